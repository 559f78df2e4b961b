// When some outputs of a derivation are valid already, the builder writes them to scratch paths
// (the valid ones must stay as they are) and the new outputs may refer to those scratch paths.
// As Nix's hash rewriting, every scratch hash part in a new output is replaced by the real one,
// in file contents and symlink targets: hash parts have one length, so sizes do not change.
import {
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/** Replace each `from` hash part (32 characters) by its `to` everywhere under `path`. */
export function rewriteHashParts(path: string, rewrites: ReadonlyMap<string, string>): void {
  if (rewrites.size === 0) return;
  const pairs = [...rewrites].map(([from, to]) => [Buffer.from(from), Buffer.from(to)] as const);
  const rewrite = (data: Buffer): boolean => {
    let changed = false;
    for (const [from, to] of pairs) {
      for (let i = data.indexOf(from); i >= 0; i = data.indexOf(from, i + from.length)) {
        to.copy(data, i);
        changed = true;
      }
    }
    return changed;
  };
  const stack = [path];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const st = lstatSync(p);
    if (st.isDirectory()) {
      for (const name of readdirSync(p)) stack.push(join(p, name));
    } else if (st.isSymbolicLink()) {
      const target = Buffer.from(readlinkSync(p, { encoding: "buffer" }));
      if (rewrite(target)) {
        unlinkSync(p);
        symlinkSync(target, p);
      }
    } else if (st.isFile()) {
      const data = readFileSync(p);
      if (rewrite(data)) writeFileSync(p, data, { mode: st.mode & 0o7777 });
    }
  }
}
