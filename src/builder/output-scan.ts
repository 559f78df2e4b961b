// One pass over an output's NAR serialisation: its NAR hash and size, the references it holds,
// and optionally its hash under other algorithms (fixed outputs) and with a scratch path's hash
// part rewritten to the real one (check builds).
import { createHash, type Hash as NodeHash } from "node:crypto";
import { Hash, type HashAlgo } from "../hash/hash.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import { ReferenceScanner } from "./reference-scanner.ts";

export interface OutputScan {
  narHash: Hash;
  narSize: number;
  references: Set<string>;
  /** NAR hash with the extra algorithm asked for, if any. */
  extraHash?: Hash;
}

/** Replaces one 32-byte hash part by another in a byte stream, across chunk seams. */
export class HashRewriter {
  private tail = Buffer.alloc(0);
  constructor(
    private readonly from: Buffer,
    private readonly to: Buffer,
  ) {}

  push(chunk: Buffer): Buffer {
    const data = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : Buffer.from(chunk);
    for (let i = data.indexOf(this.from); i >= 0; i = data.indexOf(this.from, i + this.to.length)) {
      this.to.copy(data, i);
    }
    const keep = Math.min(this.from.length - 1, data.length);
    this.tail = Buffer.from(data.subarray(data.length - keep));
    return data.subarray(0, data.length - keep);
  }

  end(): Buffer {
    const t = this.tail;
    this.tail = Buffer.alloc(0);
    return t;
  }
}

export async function scanOutput(
  path: string,
  candidates: Iterable<string>,
  opts: { extraAlgo?: HashAlgo; rewrite?: { from: string; to: string } } = {},
): Promise<OutputScan> {
  const scanner = new ReferenceScanner(candidates);
  const sha = createHash("sha256");
  const extra: NodeHash | undefined =
    opts.extraAlgo && opts.extraAlgo !== "sha256" ? createHash(opts.extraAlgo) : undefined;
  const rewriter = opts.rewrite
    ? new HashRewriter(
        Buffer.from(opts.rewrite.from, "latin1"),
        Buffer.from(opts.rewrite.to, "latin1"),
      )
    : undefined;
  let size = 0;
  const feed = (b: Buffer) => {
    if (b.length === 0) return;
    scanner.update(b);
    sha.update(b);
    extra?.update(b);
    size += b.length;
  };
  // Each chunk is done with before the next (the rewriter and scanner copy what they keep).
  for await (const chunk of dumpNar(path, { reuseBuffers: true }))
    feed(rewriter ? rewriter.push(chunk) : chunk);
  if (rewriter) feed(rewriter.end());
  const narHash = new Hash("sha256", sha.digest());
  const result: OutputScan = { narHash, narSize: size, references: scanner.result() };
  if (opts.extraAlgo) result.extraHash = extra ? new Hash(opts.extraAlgo, extra.digest()) : narHash;
  return result;
}
