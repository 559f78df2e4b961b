// The path-info cache: the same info object while the database is unchanged, and never a path
// another connection or this one has since deleted.
import { describe, expect, it } from "vitest";
import { LocalStore } from "../../src/store/local-store.ts";
import type { ValidPathInfo } from "../../src/store/path-info.ts";
import { PathInfoCache } from "../../src/store/path-info-cache.ts";
import { useTempStores } from "./temp-store.ts";

const stores = useTempStores();

describe("path infos read through the cache", () => {
  it("hands out one frozen object while nothing changed", () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const a = store.addTextToStore("a", "a");
    const first = store.queryPathInfo(a.path);
    expect(store.queryPathInfo(a.path)).toBe(first);
    expect(store.tryQueryPathInfos([a.path, a.path])).toEqual([first, first]);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => (first.references as string[]).push("x")).toThrow(TypeError);
  });

  it("forgets a path another connection deleted", async () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const other = LocalStore.open({ layout: store.layout, tempRootsOnAdd: false });
    try {
      const a = store.addTextToStore("gone", "gone");
      const b = store.addTextToStore("kept", "kept");
      expect(store.tryQueryPathInfos([a.path, b.path])).toHaveLength(2);
      await other.deletePath(a.path);
      expect(store.tryQueryPathInfo(a.path)).toBeUndefined();
      expect(store.tryQueryPathInfos([a.path, b.path]).map((i) => i.path)).toEqual([b.path]);
      // And sees one another connection added (only valid paths are kept).
      const c = other.addTextToStore("new", "new");
      expect(store.tryQueryPathInfo(c.path)?.path).toBe(c.path);
    } finally {
      other.close();
    }
  });

  it("forgets a path this connection deleted", async () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const a = store.addTextToStore("mine", "mine");
    expect(store.queryPathInfo(a.path).path).toBe(a.path);
    await store.deletePath(a.path);
    expect(store.tryQueryPathInfo(a.path)).toBeUndefined();
    expect(store.tryQueryPathInfos([a.path])).toEqual([]);
  });

  it("neither reads nor keeps infos inside a transaction someone else opened", () => {
    const store = stores.open({ tempRootsOnAdd: false });
    const a = store.addTextToStore("tx", "tx");
    const inside = store.database.transaction(() => store.queryPathInfo(a.path))();
    expect(Object.isFrozen(inside)).toBe(false);
    const outside = store.queryPathInfo(a.path);
    expect(outside).not.toBe(inside);
    expect(store.database.transaction(() => store.queryPathInfo(a.path))()).not.toBe(outside);
  });
});

describe("PathInfoCache", () => {
  const info = (path: string): ValidPathInfo =>
    ({ path, references: [], sigs: [] }) as unknown as ValidPathInfo;

  it("starts afresh when the data version moves or it is full", () => {
    let version = 1;
    let seen: number | undefined;
    const changed = () => {
      const moved = version !== seen;
      seen = version;
      return moved;
    };
    const cache = new PathInfoCache(changed, 2);
    cache.revalidate();
    cache.add(info("/s/a"));
    cache.revalidate();
    expect(cache.get("/s/a")?.path).toBe("/s/a");
    version = 2;
    cache.revalidate();
    expect(cache.get("/s/a")).toBeUndefined();
    cache.add(info("/s/a"));
    cache.add(info("/s/b"));
    cache.add(info("/s/c"));
    expect(cache.size).toBe(1);
    expect(cache.get("/s/c")?.path).toBe("/s/c");
  });
});
