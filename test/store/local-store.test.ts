// LocalStore operations one by one: adding, registering, importing, queries, errors.
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { Hash } from "../../src/hash/hash.ts";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { regularFileNar } from "../../src/nar/nar-dump.ts";
import { narHash } from "../../src/nar/nar-hash.ts";
import { pathInfoJson } from "../../src/store/path-info.ts";
import {
  DanglingReferenceError,
  ExportFormatError,
  InvalidPathError,
  MissingContentsError,
  NarHashMismatchError,
  ReferenceCycleError,
  StoreError,
} from "../../src/store/store-errors.ts";
import { makeFixedOutputPath, makeTextPath } from "../../src/store-path/make-store-path.ts";
import { StorePathError } from "../../src/store-path/store-path.ts";
import { haveVectors, readVectorJson, vectorPath } from "../vectors.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

function fakePath(store: { storeDir: { path: string } }, n: number, name = "x"): string {
  return `${store.storeDir.path}/${Hash.of("sha1", String(n)).toNix32()}-${name}`;
}

function rowCount(store: ReturnType<typeof stores.open>, table: string): number {
  return (store.database.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

describe("addToStore", () => {
  it("copies a tree NAR-hashed, read-only with mtime 1, as nix-store --add names it", async () => {
    const store = stores.open();
    const src = join(stores.root, "src-tree");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "sub", "file"), "contents");
    writeFileSync(join(src, "run"), "#!/bin/sh\n", { mode: 0o755 });
    symlinkSync("sub/file", join(src, "link"));
    const expected = await narHash(src);
    const info = await store.addToStore(src);
    const h = new Hash("sha256", expected.hash);
    expect(info.path).toBe(
      store.storeDir.print(makeFixedOutputPath(store.storeDir, "src-tree", "nar", h)),
    );
    expect(info.narHash.equals(h)).toBe(true);
    expect(info.narSize).toBe(expected.size);
    expect(info.ca).toBe(`fixed:r:${h.toString()}`);
    const real = store.toRealPath(info.path);
    expect(lstatSync(real).mode & 0o777).toBe(0o555);
    expect(lstatSync(join(real, "run")).mode & 0o777).toBe(0o555);
    expect(lstatSync(join(real, "sub", "file")).mode & 0o777).toBe(0o444);
    expect(lstatSync(join(real, "sub", "file")).mtimeMs).toBe(1000);
    expect(lstatSync(join(real, "link")).isSymbolicLink()).toBe(true);
    // Adding again finds the valid path; nothing is left under a temp name.
    expect((await store.addToStore(src)).path).toBe(info.path);
    expect(store.queryAllValidPaths()).toEqual([info.path]);
    expect((await store.verifyStore()).problems).toEqual([]);
  });

  it("refuses an invalid name before copying anything", async () => {
    const store = stores.open();
    await expect(store.addToStore(stores.root, { name: "bad name" })).rejects.toBeInstanceOf(
      StorePathError,
    );
  });
});

describe("addTextToStore", () => {
  it("names text like builtins.toFile, with references", () => {
    const store = stores.open();
    const foo = store.addTextToStore("foo", "bar");
    expect(foo.path).toBe(
      store.storeDir.print(makeTextPath(store.storeDir, "foo", Hash.of("sha256", "bar"))),
    );
    expect(foo.ca).toBe(`text:${Hash.of("sha256", "bar").toString()}`);
    const baz = store.addTextToStore("baz", foo.path, [foo.path]);
    expect(baz.references).toEqual([foo.path]);
    expect(store.queryReferrers(foo.path)).toEqual([baz.path]);
    expect(readFileSync(store.toRealPath(baz.path), "utf8")).toBe(foo.path);
  });

  it("refuses dangling references without writing anything", () => {
    const store = stores.open();
    const missing = fakePath(store, 1);
    expect(() => store.addTextToStore("t", "x", [missing])).toThrow(DanglingReferenceError);
    expect(rowCount(store, "ValidPaths")).toBe(0);
    expect(() => store.addTextToStore("t", "x", ["/elsewhere/x"])).toThrow(StorePathError);
  });

  it("records a derivation's outputs, so outputs find their derivers", () => {
    const store = stores.open();
    const dir = store.storeDir.path;
    const out = `${dir}/${Hash.of("sha1", "o").toNix32()}-hello`;
    const text = `Derive([("out","${out}","","")],[],[],"x86_64-linux","/bin/sh",[],[("out","${out}")])`;
    const drv = store.addTextToStore("hello.drv", text);
    expect(store.queryDerivationOutputs(drv.path)).toEqual(new Map([["out", out]]));
    expect(store.queryValidDerivers(out)).toEqual([drv.path]);
    expect(() => store.addTextToStore("broken.drv", "Derive(")).toThrow(StoreError);
    expect(rowCount(store, "ValidPaths")).toBe(1);
  });
});

describe("tryQueryPathInfos", () => {
  it("gives the valid paths' infos in the order asked, leaving out the others", () => {
    const store = stores.open();
    const a = store.addTextToStore("a", "one");
    const b = store.addTextToStore("b", a.path, [a.path]);
    const missing = store.storeDir.print(
      makeTextPath(store.storeDir, "gone", Hash.of("sha256", "never added")),
    );
    expect(store.tryQueryPathInfos([b.path, missing, a.path])).toEqual([
      store.queryPathInfo(b.path),
      store.queryPathInfo(a.path),
    ]);
    expect(store.tryQueryPathInfos([missing])).toEqual([]);
    expect(store.tryQueryPathInfos([b.path])[0]?.references).toEqual([a.path]);
  });
});

describe("registerValidPaths", () => {
  function writeContents(store: ReturnType<typeof stores.open>, path: string, text: string) {
    writeFileSync(store.toRealPath(path), text);
    const nar = Buffer.concat(regularFileNar(Buffer.from(text)));
    return { narHash: Hash.of("sha256", nar), narSize: nar.length };
  }

  it("registers a batch with references inside the batch and self-references", () => {
    const store = stores.open();
    const [a, b] = [fakePath(store, 1, "a"), fakePath(store, 2, "b")];
    store.registerValidPaths([
      { path: b, ...writeContents(store, b, "b"), references: [a, b] },
      { path: a, ...writeContents(store, a, "a") },
    ]);
    expect(store.queryReferences(b)).toEqual([a, b].sort());
    expect(store.queryReferrers(a)).toEqual([b]);
    expect(store.computeFSClosure([b])).toEqual([a, b].sort());
    expect(store.topoSortPaths([b, a])).toEqual([a, b]);
  });

  it("is all or nothing: a dangling reference leaves no row at all", () => {
    const store = stores.open();
    const [a, b, missing] = [fakePath(store, 1), fakePath(store, 2), fakePath(store, 3)];
    const batch = [
      { path: a, ...writeContents(store, a, "a") },
      { path: b, ...writeContents(store, b, "b"), references: [a, missing] },
    ];
    expect(() => store.registerValidPaths(batch)).toThrow(DanglingReferenceError);
    for (const t of ["ValidPaths", "Refs", "DerivationOutputs"]) expect(rowCount(store, t)).toBe(0);
    expect(store.isValidPath(a)).toBe(false);
  });

  it("refuses paths without contents, and malformed paths", () => {
    const store = stores.open();
    const a = fakePath(store, 1);
    const info = { path: a, narHash: Hash.of("sha256", ""), narSize: 0 };
    expect(() => store.registerValidPath(info)).toThrow(MissingContentsError);
    expect(() => store.registerValidPath({ ...info, path: "/not/in/store-x" })).toThrow(
      StorePathError,
    );
    expect(() =>
      store.registerValidPath({ ...info, path: `${store.storeDir.path}/short` }),
    ).toThrow(StorePathError);
    expect(rowCount(store, "ValidPaths")).toBe(0);
  });

  it("answers unknown and malformed paths with typed errors", () => {
    const store = stores.open();
    const unknown = fakePath(store, 9);
    expect(store.isValidPath(unknown)).toBe(false);
    expect(() => store.queryPathInfo(unknown)).toThrow(InvalidPathError);
    expect(() => store.queryReferences(unknown)).toThrow(InvalidPathError);
    expect(() => store.computeFSClosure([unknown])).toThrow(InvalidPathError);
    expect(() => store.queryPathInfo("/nix/store/abc")).toThrow(StorePathError);
    expect(() => store.isValidPath(`${store.storeDir.path}/eeee`)).toThrow(StorePathError);
  });

  it("refuses a batch whose references form a cycle", () => {
    const store = stores.open();
    const [a, b] = [fakePath(store, 1, "a"), fakePath(store, 2, "b")];
    expect(() =>
      store.registerValidPaths([
        { path: a, ...writeContents(store, a, "a"), references: [b] },
        { path: b, ...writeContents(store, b, "b"), references: [a] },
      ]),
    ).toThrow(ReferenceCycleError);
    expect(rowCount(store, "ValidPaths")).toBe(0);
  });

  it("registers a 1000-path reference chain in one batch", () => {
    const store = stores.open();
    const infos = Array.from({ length: 1000 }, (_, i) => {
      const p = fakePath(store, i);
      return { path: p, ...writeContents(store, p, String(i)) };
    });
    const withRefs = infos.map((info, i) => ({
      ...info,
      references: i > 0 ? [infos[i - 1]!.path] : [],
    }));
    // Its cost (about 10 µs a row here) is measured by the benchmarks, not asserted.
    store.registerValidPaths(withRefs);
    expect(store.computeFSClosure([infos[999]!.path])).toHaveLength(1000);
  });
});

describe("importPath and the export format", () => {
  it("imports a NAR with its path info and checks hash and size", async () => {
    const store = stores.open();
    const nar = Buffer.concat(regularFileNar(Buffer.from("hello")));
    const path = fakePath(store, 1, "hello");
    const info = { path, narHash: Hash.of("sha256", nar), narSize: nar.length };
    await expect(
      store.importPath({ ...info, narHash: Hash.of("sha256", "other") }, [nar]),
    ).rejects.toBeInstanceOf(NarHashMismatchError);
    await expect(store.importPath({ ...info, narSize: 1 }, [nar])).rejects.toBeInstanceOf(
      NarHashMismatchError,
    );
    expect(existsSync(store.toRealPath(path))).toBe(false);
    await expect(
      store.importPath({ ...info, references: [fakePath(store, 2)] }, [nar]),
    ).rejects.toBeInstanceOf(DanglingReferenceError);
    // A valid path's NAR is consumed, leaving what follows in the reader.
    expect((await store.importPath(info, [nar])).narSize).toBe(nar.length);
    const reader = new ByteReader([nar, Buffer.from("rest")]);
    await store.importPath(info, reader);
    expect((await reader.readExact(4)).toString()).toBe("rest");
  });

  it("imports under a lock the caller holds; repairs a valid path's contents", async () => {
    const store = stores.open();
    const nar = Buffer.concat(regularFileNar(Buffer.from("hello")));
    const path = fakePath(store, 3, "hello");
    const info = { path, narHash: Hash.of("sha256", nar), narSize: nar.length };
    const lock = store.locks.tryLock(path)!;
    await store.importPath(info, [nar], { lockHeld: true });
    lock.release();
    expect(rowCount(store, "PathLocks")).toBe(0);

    const real = store.toRealPath(path);
    chmodSync(real, 0o644);
    writeFileSync(real, "broken");
    // Without repair a valid path is left as it is.
    await store.importPath(info, [nar]);
    expect(readFileSync(real, "utf8")).toBe("broken");
    await store.importPath(info, [nar], { repair: true });
    expect(readFileSync(real, "utf8")).toBe("hello");
    expect(lstatSync(real).mode & 0o222).toBe(0);
    // Contents of another NAR hash cannot repair it: the registration would be wrong.
    const other = Buffer.concat(regularFileNar(Buffer.from("other")));
    await expect(
      store.importPath(
        { path, narHash: Hash.of("sha256", other), narSize: other.length },
        [other],
        { repair: true },
      ),
    ).rejects.toThrow(/cannot repair .* registered with/);
    expect(readFileSync(real, "utf8")).toBe("hello");
  });

  it("exports and imports again, all or nothing", async () => {
    const a = stores.open();
    const x = a.addTextToStore("x", "x");
    const y = a.addTextToStore("y", x.path, [x.path]);
    const chunks: Buffer[] = [];
    for await (const c of a.exportPaths([y.path, x.path])) chunks.push(c);
    const stream = Buffer.concat(chunks);

    const b = stores.open({ storeDir: a.storeDir.path, storeRoot: stores.freshDir("root") });
    // Only y: its reference x is missing, so nothing is imported.
    const yOnly: Buffer[] = [];
    for await (const c of a.exportPaths([y.path])) yOnly.push(c);
    await expect(b.importExport([Buffer.concat(yOnly)])).rejects.toBeInstanceOf(
      DanglingReferenceError,
    );
    expect(b.queryAllValidPaths()).toEqual([]);
    expect(await b.importExport([stream])).toEqual([x.path, y.path]);
    expect(b.queryPathInfo(y.path).references).toEqual([x.path]);
    expect(b.queryPathInfo(y.path).narHash.equals(y.narHash)).toBe(true);
    await expect(b.importExport([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0])])).rejects.toBeInstanceOf(
      ExportFormatError,
    );
    await expect(b.importExport([stream.subarray(0, stream.length - 3)])).rejects.toBeInstanceOf(
      ExportFormatError,
    );
    expect((await b.verifyStore()).problems).toEqual([]);
  });

  it.runIf(haveVectors)(
    "imports Nix 2.8's export files into a /nix/store chroot store",
    async () => {
      const store = stores.open({ storeDir: "/nix/store", storeRoot: stores.freshDir("root") });
      const expected = readVectorJson<Record<string, unknown>[]>(
        "nar/nix-2.8/main-closure.path-info.json",
      );
      const both = readFileSync(vectorPath("nar/nix-2.8/main-and-greeting.export"));
      // main refers to dep, which the file does not hold.
      await expect(store.importExport([both])).rejects.toBeInstanceOf(DanglingReferenceError);
      expect(store.queryAllValidPaths()).toEqual([]);
      const dep = expected.find((e) => String(e.path).endsWith("-dep"))!;
      await store.importPath(
        {
          path: String(dep.path),
          narHash: Hash.parse(String(dep.narHash)),
          narSize: Number(dep.narSize),
          deriver: String(dep.deriver),
        },
        regularFileNar(Buffer.from("dep\n")),
      );
      await store.importExport([both]);
      const ours = store.computeFSClosure([String(expected[1]!.path)]).map((p) => {
        const { registrationTime, ultimate, ca, ...rest } = pathInfoJson(store.queryPathInfo(p));
        return rest;
      });
      expect(ours).toEqual(expected.map(({ registrationTime, ultimate, ca, ...rest }) => rest));
      // The .drv of a real derivation from the vectors registers its outputs.
      const drvText = readFileSync(
        vectorPath("derivation/nix-2.8/p2qkh6lklg7zljx468xsl3gwif574nq4-dep.drv"),
      );
      const drv = store.addTextToStore("dep.drv", drvText);
      expect(drv.path).toBe("/nix/store/p2qkh6lklg7zljx468xsl3gwif574nq4-dep.drv");
      expect(store.queryValidDerivers(String(dep.path))).toEqual([drv.path]);
      expect(store.computeFSClosure([drv.path], { includeOutputs: true })).toEqual(
        [drv.path, String(dep.path)].sort(),
      );
      expect(parseDerivation(drvText, { name: "dep", storeDir: store.storeDir }).builder).toBe(
        "/bin/sh",
      );
      expect((await store.verifyStore()).problems).toEqual([]);
    },
  );
});

describe("failed paths", () => {
  it("remembers and forgets failures", () => {
    const store = stores.open();
    const [a, b] = [fakePath(store, 1), fakePath(store, 2)];
    store.registerFailedPath(a);
    store.registerFailedPath(b);
    expect(store.hasFailedPath(a)).toBe(true);
    expect(store.queryFailedPaths()).toEqual([a, b].sort());
    store.clearFailedPaths([a]);
    expect(store.hasFailedPath(a)).toBe(false);
    store.clearFailedPaths();
    expect(store.queryFailedPaths()).toEqual([]);
    expect(() => store.registerFailedPath("nonsense")).toThrow(StorePathError);
  });
});

describe("opening", () => {
  it("creates its layout on first use and reopens the same database", () => {
    const stateDir = stores.freshDir();
    const a = stores.open({ stateDir });
    const p = a.addTextToStore("kept", "k").path;
    a.close();
    for (const sub of ["db/db.sqlite", "gcroots", "log", "tmp", "store"]) {
      expect(existsSync(join(stateDir, sub))).toBe(true);
    }
    const b = stores.open({ stateDir });
    expect(b.isValidPath(p)).toBe(true);
    expect(b.database.pragma("journal_mode", { simple: true })).toBe("wal");
  });

  it("refuses a database from a newer nixstate", () => {
    const stateDir = stores.freshDir();
    const a = stores.open({ stateDir });
    a.database.pragma("user_version = 999");
    a.close();
    expect(() => stores.open({ stateDir })).toThrow(/newer than this nixstate supports/);
  });

  it("releases the locks it still holds when closed", () => {
    const stateDir = stores.freshDir();
    const a = stores.open({ stateDir });
    const p = fakePath(a, 1);
    expect(a.locks.tryLock(p)).toBeDefined();
    a.close();
    const b = stores.open({ stateDir });
    expect(b.locks.holder(p)).toBeUndefined();
  });

  it("keeps GC roots inside the gcroots folder", () => {
    const store = stores.open();
    const p = store.addTextToStore("rooted", "r").path;
    expect(store.addPermRoot(p, "a/b")).toBe(join(store.layout.gcRootsDir, "a", "b"));
    expect(store.findRoots().get(p)).toEqual([join(store.layout.gcRootsDir, "a", "b")]);
    expect(() => store.addPermRoot(p, "../escape")).toThrow(StoreError);
    expect(() => store.addPermRoot(p, "/abs")).toThrow(StoreError);
    expect(store.removePermRoot("a/b")).toBe(true);
    expect(store.removePermRoot("a/b")).toBe(false);
  });

  it("follows result-style symlinks to the store path they name", () => {
    const store = stores.open();
    const p = store.addTextToStore("linked", "l").path;
    const link = join(stores.root, "result-link");
    symlinkSync(p, link);
    expect(store.followLinksToStorePath(link)).toBe(p);
    expect(store.followLinksToStorePath(`${p}/sub/file`)).toBe(p);
    expect(() => store.followLinksToStorePath(stores.root)).toThrow(StorePathError);
  });
});
