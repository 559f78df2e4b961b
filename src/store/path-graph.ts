// Graph walks over store paths that do not care where the edges come from (the database, a
// model in a test, an export stream).
import { ReferenceCycleError } from "./store-errors.ts";

/** Everything reachable from `start` (included) along `next`. */
export function closureOf(
  start: Iterable<string>,
  next: (path: string) => Iterable<string>,
): Set<string> {
  const seen = new Set<string>();
  const stack = [...start];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    for (const q of next(p)) if (!seen.has(q)) stack.push(q);
  }
  return seen;
}

/**
 * Sort `paths` so that every path comes after the paths it references (dependencies first, the
 * order of export streams and registration). References outside `paths` and self-references are
 * ignored; equal-rank paths keep a deterministic (sorted) order. This is the reverse of Nix's
 * topoSortPaths, which puts referrers first. Throws ReferenceCycleError on a cycle.
 */
export function topoSortPaths(
  paths: Iterable<string>,
  references: (path: string) => Iterable<string>,
): string[] {
  const set = new Set(paths);
  const done = new Set<string>();
  const onStack = new Set<string>();
  const result: string[] = [];
  for (const root of [...set].sort()) {
    if (done.has(root)) continue;
    // Iterative DFS: each frame is a path and the references still to visit.
    const frames: { path: string; todo: string[] }[] = [];
    const enter = (p: string): void => {
      onStack.add(p);
      const todo = [...references(p)].filter((q) => q !== p && set.has(q)).sort();
      frames.push({ path: p, todo: todo.reverse() });
    };
    enter(root);
    while (frames.length > 0) {
      const top = frames[frames.length - 1]!;
      const q = top.todo.pop();
      if (q === undefined) {
        frames.pop();
        onStack.delete(top.path);
        done.add(top.path);
        result.push(top.path);
      } else if (onStack.has(q)) {
        const from = frames.findIndex((f) => f.path === q);
        throw new ReferenceCycleError([...frames.slice(from).map((f) => f.path), q]);
      } else if (!done.has(q)) {
        enter(q);
      }
    }
  }
  return result;
}
