// The requests a serve client sends most and in turn (QueryValidPaths, QueryPathInfos,
// DumpStorePath, QueryClosure), read without an await when all their bytes are already buffered
// in one chunk: read field by field, a small request's round trip paid about a dozen awaits.
// Anything else (bytes still to come, another command, a value readServeRequest would refuse)
// gives undefined with nothing consumed, and readServeRequest reads it and reports its errors.
import { sortBytewise } from "../../derivation/derivation.ts";
import { paddingLength } from "../../io/wire-padding.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import { MAX_WIRE_INT } from "../wire/wire-decoder.ts";
import { ServeCommand } from "./serve-command.ts";
import type { ServeRequest } from "./serve-request.ts";

/** Thrown inside the cursor: this request is for readServeRequest. */
const ASYNC = Symbol("read it with readServeRequest");

class Cursor {
  pos = 0;
  constructor(
    readonly view: Buffer,
    readonly d: WireDecoder,
  ) {}

  u64(limit: number): number {
    const { view, pos } = this;
    if (pos + 8 > view.length) throw ASYNC;
    const low = view.readUInt32LE(pos);
    if (view.readUInt32LE(pos + 4) !== 0 || low > limit) throw ASYNC;
    this.pos = pos + 8;
    return low;
  }

  bool(): boolean {
    return this.u64(MAX_WIRE_INT) !== 0;
  }

  storePath(): string {
    const length = this.u64(this.d.maxStorePathLength);
    const { view, pos } = this;
    const end = pos + length;
    const padded = end + paddingLength(length);
    if (padded > view.length) throw ASYNC;
    for (let i = end; i < padded; i++) if (view[i] !== 0) throw ASYNC;
    const text = view.toString("latin1", pos, end);
    try {
      this.d.storeDir.parseCanonicalPath(text);
    } catch {
      throw ASYNC;
    }
    this.pos = padded;
    return text;
  }

  storePathSet(): string[] {
    const n = this.u64(this.d.limits.maxCount);
    const paths: string[] = [];
    for (let i = 0; i < n; i++) paths.push(this.storePath());
    return sortBytewise(new Set(paths));
  }
}

function parse(c: Cursor): ServeRequest {
  switch (c.u64(MAX_WIRE_INT)) {
    case ServeCommand.QueryValidPaths:
      return {
        command: "QueryValidPaths",
        lock: c.bool(),
        substitute: c.bool(),
        paths: c.storePathSet(),
      };
    case ServeCommand.QueryPathInfos:
      return { command: "QueryPathInfos", paths: c.storePathSet() };
    case ServeCommand.DumpStorePath:
      return { command: "DumpStorePath", path: c.storePath() };
    case ServeCommand.QueryClosure:
      return { command: "QueryClosure", includeOutputs: c.bool(), paths: c.storePathSet() };
    default:
      throw ASYNC;
  }
}

/** The next request, consumed, when it is one of these and all here; else undefined. */
export function tryReadBufferedRequest(d: WireDecoder): ServeRequest | undefined {
  const view = d.reader.peekView();
  if (view === undefined) return undefined;
  const cursor = new Cursor(view, d);
  let request: ServeRequest;
  try {
    request = parse(cursor);
  } catch (error) {
    if (error === ASYNC) return undefined;
    throw error;
  }
  d.reader.tryReadView(cursor.pos);
  return request;
}
