// How two versions of a derivation differ, field by field, the way nix-diff reports it: builder,
// system, args, env (per key), outputs, input sources and input derivations. Pure: the caller
// says which old store paths correspond to which new ones (the outputs of changed inputs), and a
// string that differs only by such paths is no difference of this derivation's own — it is the
// input's change showing through (run-diff.ts follows that input instead).
import {
  type Derivation,
  type DerivationOutput,
  printMethodAlgo,
} from "../derivation/derivation.ts";

export type DrvChange =
  | { kind: "builder" | "system"; old: string; new: string }
  /** `first`: the first argument (from 0) that differs by more than paths, if the counts agree. */
  | { kind: "args"; old: string[]; new: string[]; first?: number }
  /** `old` absent: the key was added; `new` absent: removed. */
  | { kind: "env"; key: string; old?: string; new?: string }
  /** Outputs described as `input-addressed`, `fixed r:sha256:…` or `deferred`. */
  | { kind: "output"; name: string; old?: string; new?: string }
  /** An input source, paired with the old one by its name part. */
  | { kind: "inputSrc"; name: string; old?: string; new?: string }
  /** An input derivation added or removed (one whose path changed is not listed here). */
  | { kind: "inputDrv"; name: string; old?: string; new?: string }
  /** The outputs wanted of an input derivation. */
  | { kind: "inputDrvOutputs"; name: string; old: string[]; new: string[] };

const NIX32 = "[0-9a-df-np-sv-z]";
const HASH_PREFIX = new RegExp(`^${NIX32}{32}-`);
const NAME_CHAR = "[A-Za-z0-9+\\-._?=]";

/** `/nix/store/<hash>-hello-2.1` → `hello-2.1` (anything else: its last component). */
export function storePathName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base.replace(HASH_PREFIX, "");
}

/** The derivation name of a .drv path: `/nix/store/<hash>-hello.drv` → `hello`. */
export function drvPathName(drvPath: string): string {
  const name = storePathName(drvPath);
  return name.endsWith(".drv") ? name.slice(0, -4) : name;
}

export interface Pairing<T> {
  pairs: [T, T][];
  onlyOld: T[];
  onlyNew: T[];
}

/**
 * Pair two lists in rounds, each round matching the still unpaired elements whose key is equal
 * (in list order): e.g. same path first, then same name and outputs, then same name. Several
 * elements with one name are thus paired by what they share most, and by position last.
 */
export function pairUp<T>(olds: T[], news: T[], keys: ((x: T) => string)[]): Pairing<T> {
  let restOld = olds;
  let restNew = news;
  const pairs: [T, T][] = [];
  for (const key of keys) {
    const byKey = new Map<string, T[]>();
    for (const n of restNew) {
      const k = key(n);
      const list = byKey.get(k);
      if (list) list.push(n);
      else byKey.set(k, [n]);
    }
    const paired = new Set<T>();
    const left: T[] = [];
    for (const o of restOld) {
      const n = byKey.get(key(o))?.shift();
      if (n === undefined) left.push(o);
      else {
        pairs.push([o, n]);
        paired.add(n);
      }
    }
    restOld = left;
    restNew = restNew.filter((n) => !paired.has(n));
  }
  return { pairs, onlyOld: restOld, onlyNew: restNew };
}

export interface InputDrv {
  name: string;
  path: string;
  outputs: string[];
}

function inputDrvsOf(d: Derivation): InputDrv[] {
  return [...d.inputDrvs].map(([path, outputs]) => ({ path, name: drvPathName(path), outputs }));
}

/** The input derivations of two versions, paired: same path, else same name and outputs, else name. */
export function pairInputDrvs(a: Derivation, b: Derivation): Pairing<InputDrv> {
  return pairUp(inputDrvsOf(a), inputDrvsOf(b), [
    (x) => x.path,
    (x) => `${x.name}\0${x.outputs.join(",")}`,
    (x) => x.name,
  ]);
}

/** Input derivations paired across versions whose path changed: the ones to follow down. */
export function changedInputDrvs(a: Derivation, b: Derivation): [InputDrv, InputDrv][] {
  return pairInputDrvs(a, b).pairs.filter(([o, n]) => o.path !== n.path);
}

/** Old store paths and what they became. */
export interface PathRewrites {
  /** Full old path → full new path. */
  exact?: Map<string, string>;
  /**
   * Name part → full new path: any old path with that name is taken to be it. For inputs whose
   * old text is unknown, so their old output paths are too.
   */
  byName?: Map<string, string>;
}

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A function rewriting every old path in a string to its new one, in one pass. */
export function pathRewriter(r: PathRewrites): (s: string) => string {
  const exact = [...(r.exact ?? [])].filter(([o, n]) => o !== n);
  const byName = [...(r.byName ?? [])];
  if (exact.length === 0 && byName.length === 0) return (s) => s;
  // Longest first, so a path is never rewritten by a key that is only its prefix.
  const alternatives = exact.map(([o]) => o).sort((x, y) => y.length - x.length);
  const parts = alternatives.map(escapeRe);
  if (byName.length > 0) {
    const names = byName.map(([n]) => n).sort((x, y) => y.length - x.length);
    // Only the base name is replaced: the store directory is the same in both versions.
    parts.push(`(?<=/)${NIX32}{32}-(${names.map(escapeRe).join("|")})(?!${NAME_CHAR})`);
  }
  const re = new RegExp(parts.join("|"), "g");
  const exactMap = new Map(exact);
  const nameMap = new Map(byName);
  return (s) =>
    // `name` is the byName group when that matched (else undefined, or the offset without it).
    s.replace(re, (m: string, name: unknown) =>
      typeof name === "string" ? baseName(nameMap.get(name)!) : exactMap.get(m)!,
    );
}

function describeOutput(o: DerivationOutput): string {
  switch (o.type) {
    case "inputAddressed":
      return "input-addressed";
    case "fixed":
      return `fixed ${printMethodAlgo(o.method, o.hash)}:${o.hash.toNix32()}`;
    case "deferred":
      return "deferred";
  }
}

const outputPath = (o: DerivationOutput | undefined) => (o && "path" in o ? o.path : undefined);

/**
 * The differences of `b` from `a` that are its own: everything but input derivations whose path
 * changed (see changedInputDrvs) and strings that differ only by paths `rewrites` maps, by this
 * derivation's own output paths, or by input sources that changed (reported once, as such).
 */
export function diffDerivations(
  a: Derivation,
  b: Derivation,
  rewrites: PathRewrites = {},
): DrvChange[] {
  const changes: DrvChange[] = [];
  const exact = new Map(rewrites.exact);
  // Its own output paths follow from everything else: a change shows there as a consequence.
  for (const [name, o] of a.outputs) {
    const [op, np] = [outputPath(o), outputPath(b.outputs.get(name))];
    if (op !== undefined && np !== undefined) exact.set(op, np);
  }
  const srcs = pairUp(a.inputSrcs, b.inputSrcs, [(p) => p, storePathName]);
  for (const [o, n] of srcs.pairs) exact.set(o, n);
  const inputs = pairInputDrvs(a, b);
  for (const [o, n] of inputs.pairs) exact.set(o.path, n.path);
  const rw = pathRewriter({ exact, ...(rewrites.byName ? { byName: rewrites.byName } : {}) });

  if (rw(a.builder) !== b.builder)
    changes.push({ kind: "builder", old: a.builder, new: b.builder });
  if (a.platform !== b.platform) changes.push({ kind: "system", old: a.platform, new: b.platform });
  const firstArg = a.args.findIndex((x, i) => rw(x) !== b.args[i]);
  if (a.args.length !== b.args.length) changes.push({ kind: "args", old: a.args, new: b.args });
  else if (firstArg >= 0) changes.push({ kind: "args", old: a.args, new: b.args, first: firstArg });
  for (const key of sortedUnion(a.env.keys(), b.env.keys())) {
    const [o, n] = [a.env.get(key), b.env.get(key)];
    if (o === undefined) changes.push({ kind: "env", key, new: n! });
    else if (n === undefined) changes.push({ kind: "env", key, old: o });
    else if (rw(o) !== n) changes.push({ kind: "env", key, old: o, new: n });
  }
  for (const name of sortedUnion(a.outputs.keys(), b.outputs.keys())) {
    const [o, n] = [a.outputs.get(name), b.outputs.get(name)];
    const [od, nd] = [o && describeOutput(o), n && describeOutput(n)];
    if (od !== nd) changes.push({ kind: "output", name, ...optional(od, nd) });
  }
  for (const [o, n] of srcs.pairs)
    if (o !== n) changes.push({ kind: "inputSrc", name: storePathName(n), old: o, new: n });
  for (const o of srcs.onlyOld) changes.push({ kind: "inputSrc", name: storePathName(o), old: o });
  for (const n of srcs.onlyNew) changes.push({ kind: "inputSrc", name: storePathName(n), new: n });
  for (const [o, n] of inputs.pairs)
    if (o.outputs.join(",") !== n.outputs.join(","))
      changes.push({ kind: "inputDrvOutputs", name: n.name, old: o.outputs, new: n.outputs });
  for (const o of inputs.onlyOld) changes.push({ kind: "inputDrv", name: o.name, old: o.path });
  for (const n of inputs.onlyNew) changes.push({ kind: "inputDrv", name: n.name, new: n.path });
  return changes;
}

function sortedUnion(a: Iterable<string>, b: Iterable<string>): string[] {
  return [...new Set([...a, ...b])].sort();
}

function optional(old: string | undefined, neu: string | undefined) {
  return { ...(old === undefined ? {} : { old }), ...(neu === undefined ? {} : { new: neu }) };
}

const MAX_SHOWN = 160;

/** A value as people read it: quoted, one line, long ones cut in the middle. */
export function showValue(s: string): string {
  const q = JSON.stringify(s);
  return q.length <= MAX_SHOWN ? q : `${q.slice(0, MAX_SHOWN / 2)}…${q.slice(-MAX_SHOWN / 2)}`;
}

/** One change in words: `env 'greeting' changed: "hello" → "hi"`. */
export function describeChange(c: DrvChange): string {
  const verb = (o?: unknown, n?: unknown) =>
    o === undefined ? "added" : n === undefined ? "removed" : "changed";
  const values = (o?: string, n?: string) =>
    o === undefined
      ? showValue(n!)
      : n === undefined
        ? showValue(o)
        : `${showValue(o)} → ${showValue(n)}`;
  switch (c.kind) {
    case "builder":
    case "system":
      return `${c.kind} changed: ${values(c.old, c.new)}`;
    case "args":
      return c.first === undefined
        ? `args changed: ${c.old.length} → ${c.new.length} arguments: ${showValue(JSON.stringify(c.old))} → ${showValue(JSON.stringify(c.new))}`
        : `argument ${c.first + 1} changed: ${values(c.old[c.first], c.new[c.first])}`;
    case "env":
      return `env '${c.key}' ${verb(c.old, c.new)}: ${values(c.old, c.new)}`;
    case "output":
      return `output '${c.name}' ${verb(c.old, c.new)}: ${c.old ?? ""}${c.old && c.new ? " → " : ""}${c.new ?? ""}`;
    case "inputSrc":
      return `input source '${c.name}' ${verb(c.old, c.new)}: ${values(c.old, c.new)}`;
    case "inputDrv":
      return `input derivation '${c.name}' ${verb(c.old, c.new)}: ${values(c.old, c.new)}`;
    case "inputDrvOutputs":
      return `outputs wanted of input '${c.name}' changed: ${c.old.join(",")} → ${c.new.join(",")}`;
  }
}
