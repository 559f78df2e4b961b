// The floor of a Node program for `bench -- nar`: `node nar-floor.mjs dump|hash PATH` and
// `node nar-floor.mjs restore DIR < NAR`, the least any Node implementation must do, in plain
// JavaScript run by `node` itself (no bundle, no transpiler). Its output is a real NAR, hash or
// tree (the benchmark checks it against Nix's), but it checks nothing: no hostile input, no file
// changing underneath, no time slicing, symlinks and executables only as far as the tree needs.
// Where nixstate is at this floor and the floor is below Nix, Node's own cost is what is left.
import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  writeSync,
} from "node:fs";

const [mode, target] = process.argv.slice(2);
const CHUNK = 1 << 20;

function writeAll(fd, buf, length) {
  for (let done = 0; done < length; ) {
    try {
      done += writeSync(fd, buf, done, length - done);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

/** NAR bytes gathered into one buffer, handed to `emit` whenever it fills. */
function narWriter(emit) {
  const buf = Buffer.allocUnsafe(CHUNK);
  let fill = 0;
  const flush = () => {
    if (fill > 0) emit(buf, fill);
    fill = 0;
  };
  const room = (n) => {
    if (CHUNK - fill < n) flush();
  };
  const u64 = (n) => {
    room(8);
    buf.writeUInt32LE(n % 2 ** 32, fill);
    buf.writeUInt32LE(Math.floor(n / 2 ** 32), fill + 4);
    fill += 8;
  };
  const pad = (n) => {
    const p = (8 - (n % 8)) % 8;
    room(p);
    buf.fill(0, fill, fill + p);
    fill += p;
  };
  const str = (s) => {
    const b = typeof s === "string" ? Buffer.from(s) : s;
    u64(b.length);
    room(b.length);
    b.copy(buf, fill);
    fill += b.length;
    pad(b.length);
  };
  const contents = (fd, size) => {
    u64(size);
    for (let done = 0; done < size; ) {
      if (CHUNK - fill < 65536) flush();
      const n = readSync(fd, buf, fill, Math.min(CHUNK - fill, size - done), null);
      fill += n;
      done += n;
    }
    pad(size);
  };
  return { str, contents, flush };
}

function dump(path, w) {
  const st = lstatSync(path);
  w.str("(");
  if (st.isSymbolicLink()) {
    w.str("type");
    w.str("symlink");
    w.str("target");
    w.str(readlinkSync(path, { encoding: "buffer" }));
  } else if (st.isDirectory()) {
    w.str("type");
    w.str("directory");
    for (const name of readdirSync(path, { encoding: "buffer" }).sort(Buffer.compare)) {
      w.str("entry");
      w.str("(");
      w.str("name");
      w.str(name);
      w.str("node");
      dump(`${path}/${name}`, w);
      w.str(")");
    }
  } else {
    const fd = openSync(path, "r");
    const { size, mode: m } = fstatSync(fd);
    w.str("type");
    w.str("regular");
    if (m & 0o100) {
      w.str("executable");
      w.str("");
    }
    w.str("contents");
    w.contents(fd, size);
    closeSync(fd);
  }
  w.str(")");
}

/** Blocking reads of stdin, as much as asked for, from one buffer. */
function stdinReader() {
  let buf = Buffer.allocUnsafe(CHUNK);
  let start = 0;
  let end = 0;
  const need = (n) => {
    if (end - start >= n) return;
    if (start > 0) {
      buf.copy(buf, 0, start, end);
      end -= start;
      start = 0;
    }
    if (buf.length < n) buf = Buffer.concat([buf.subarray(0, end)], Math.max(n, 2 * buf.length));
    while (end < n) {
      const got = readSync(0, buf, end, buf.length - end, null);
      if (got === 0) throw new Error("NAR ends early");
      end += got;
    }
  };
  const u64 = () => {
    need(8);
    const n = buf.readUInt32LE(start) + buf.readUInt32LE(start + 4) * 2 ** 32;
    start += 8;
    return n;
  };
  const bytes = (n) => {
    const padded = n + ((8 - (n % 8)) % 8);
    need(padded);
    const b = buf.subarray(start, start + n);
    start += padded;
    return b;
  };
  const str = () => bytes(u64()).toString("latin1");
  /** Copy `size` bytes of contents (and their padding) to `fd`. */
  const copyTo = (fd, size) => {
    let left = size;
    while (left > 0) {
      need(Math.min(left, CHUNK / 2));
      const n = Math.min(left, end - start);
      writeAll(fd, buf.subarray(start, start + n), n);
      start += n;
      left -= n;
    }
    const p = (8 - (size % 8)) % 8;
    need(p);
    start += p;
  };
  return { u64, bytes, str, copyTo };
}

function restore(path, r) {
  r.str(); // "("
  r.str(); // "type"
  const type = r.str();
  if (type === "directory") {
    mkdirSync(path);
    for (let tag = r.str(); tag === "entry"; tag = r.str()) {
      r.str(); // "("
      r.str(); // "name"
      const name = r.bytes(r.u64()).toString("latin1");
      r.str(); // "node"
      restore(`${path}/${name}`, r);
      r.str(); // ")"
    }
    return; // the directory's ")" ended the loop
  }
  if (type === "symlink") {
    r.str(); // "target"
    symlinkSync(r.str(), path);
  } else {
    let tag = r.str();
    const executable = tag === "executable";
    if (executable) {
      r.str(); // ""
      tag = r.str(); // "contents"
    }
    const fd = openSync(path, "w", executable ? 0o755 : 0o644);
    r.copyTo(fd, r.u64());
    closeSync(fd);
  }
  r.str(); // ")"
}

if (mode === "dump") {
  const w = narWriter((buf, n) => writeAll(1, buf, n));
  w.str("nix-archive-1");
  dump(target, w);
  w.flush();
} else if (mode === "hash") {
  const hash = createHash("sha256");
  const w = narWriter((buf, n) => hash.update(buf.subarray(0, n)));
  w.str("nix-archive-1");
  dump(target, w);
  w.flush();
  process.stdout.write(`${hash.digest("hex")}\n`);
} else if (mode === "restore") {
  const r = stdinReader();
  if (r.str() !== "nix-archive-1") throw new Error("not a NAR");
  restore(target, r);
} else {
  throw new Error("usage: node nar-floor.mjs dump|hash PATH | restore DIR < NAR");
}
