// ExportPaths (cmdExportPaths) for the serve benchmark: ServeClient has no call for it (Nix's own
// clients stopped using it), so this speaks the request directly over a server's stdio and reads
// the export stream back the way an importer would find its end: item marker, NAR, trailer.
import { spawn } from "node:child_process";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { writeChunks } from "../../src/io/writable-sink.ts";
import {
  readExportItemStart,
  readExportItemTrailer,
} from "../../src/protocol/serve/export-stream.ts";
import { readServerHello, writeClientHello } from "../../src/protocol/serve/handshake.ts";
import { writeServeRequest } from "../../src/protocol/serve/serve-request.ts";
import { negotiateServeVersion } from "../../src/protocol/serve/serve-version.ts";
import { WireDecoder } from "../../src/protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import { readNar } from "../../src/protocol/wire/wire-nar.ts";
import type { StoreDir } from "../../src/store-path/store-path.ts";

export interface ExportSession {
  /** Ask for `paths` as one export stream; resolves with the stream's size in bytes. */
  exportPaths(paths: string[]): Promise<number>;
  close(): Promise<void>;
}

export async function startExportSession(
  argv: string[],
  env: NodeJS.ProcessEnv,
  storeDir: StoreDir,
): Promise<ExportSession> {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((done) => child.on("exit", done));
  const e = new WireEncoder(storeDir);
  const d = new WireDecoder(new ByteReader(child.stdout), storeDir);
  writeClientHello(e, 0x207);
  await writeChunks([e.take()], child.stdin);
  const version = negotiateServeVersion(0x207, await readServerHello(d));
  return {
    async exportPaths(paths) {
      const start = d.offset;
      writeServeRequest(e, { command: "ExportPaths", sign: false, paths }, version);
      await writeChunks([e.take()], child.stdin);
      while (await readExportItemStart(d)) {
        await readNar(d);
        await readExportItemTrailer(d);
      }
      return d.offset - start;
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}
