// Worker events carry the effects' own values; the log keeps plain JSON. Everything the goals
// exchange is plain data already except derivations (Maps, hashes), which travel as a reference
// to their ATerm text: `{ "$drv": "<sha256 of the ATerm>" }`. The text is kept once per run log
// (so a garbage-collected .drv cannot break a replay) and parsed back when a replay needs it.
import { createHash } from "node:crypto";
import { parseDerivation } from "../derivation/aterm-parse.ts";
import { printDerivation } from "../derivation/aterm-print.ts";
import type { BasicDerivation, Derivation } from "../derivation/derivation.ts";
import { inferStoreDir } from "../derivation/drv-file.ts";
import type { WorkerEvent } from "../machines/worker-events.ts";
import { StoreDir } from "../store-path/store-path.ts";

/** A derivation as the log refers to it. */
export interface DrvRef {
  $drv: string;
}

/** A derivation's ATerm, kept beside the events that refer to it. */
export interface KeptDrv {
  hash: string;
  name: string;
  aterm: Buffer;
}

export function isDrvRef(v: unknown): v is DrvRef {
  return typeof v === "object" && v !== null && typeof (v as DrvRef).$drv === "string";
}

function isDerivation(v: unknown): v is BasicDerivation {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as BasicDerivation).outputs instanceof Map &&
    (v as BasicDerivation).env instanceof Map
  );
}

/** Turns live worker events into plain ones, handing each new derivation text to `keep`. */
export class EventEncoder {
  private readonly refs = new WeakMap<object, DrvRef>();

  constructor(private readonly keep: (drv: KeptDrv) => void) {}

  drvRef(drv: BasicDerivation): DrvRef {
    let ref = this.refs.get(drv);
    if (ref) return ref;
    const aterm = printDerivation(drv);
    const hash = createHash("sha256").update(aterm).digest("hex");
    ref = { $drv: hash };
    this.refs.set(drv, ref);
    this.keep({ hash, name: drv.name, aterm });
    return ref;
  }

  /** The event with derivations replaced by references (a new object only where needed). */
  encode(e: WorkerEvent): WorkerEvent {
    switch (e.type) {
      case "goal.created":
        return { ...e, input: this.withoutDrvs(e.input) };
      case "effect.started":
        return { ...e, input: inputFacts(e.input) };
      case "goal.done": {
        if (e.kind === "substitution") return e;
        const { output: _, ...rest } = e;
        return rest;
      }
      case "effect.done":
        return isDerivation(e.output) ? { ...e, output: this.drvRef(e.output) } : e;
      default:
        return e;
    }
  }

  private withoutDrvs(input: unknown): unknown {
    if (typeof input !== "object" || input === null) return input;
    const o = input as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (const k of ["drv", "basicDrv"]) {
      if (isDerivation(o[k])) {
        copy ??= { ...o };
        copy[k] = this.drvRef(o[k]);
      }
    }
    return copy ?? input;
  }
}

/** Fields of effect inputs that the goal's own record already says. */
const KNOWN = new Set(["drv", "basicDrv", "drvPath", "goalId", "goalName"]);

/**
 * The key facts of an effect's input, as the log keeps them: what the goal's key, input and
 * earlier answers do not already say (the derivation, its path, the goal's id and name go); of
 * each output its name and whether it is valid and wanted; short lists of names or paths as they
 * are, longer lists and maps (closures, input outputs: earlier answers passed on) by their size.
 * Replay computes the same facts from what the machine passes, so any change in them shows.
 */
export function inputFacts(input: unknown): unknown {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
  const facts: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (KNOWN.has(k)) continue;
    if (k === "outputs" && Array.isArray(v)) {
      facts[k] = v.map((o: { name: string; valid: boolean; wanted: boolean } | null) =>
        typeof o === "object" && o !== null
          ? { name: o.name, valid: o.valid, wanted: o.wanted }
          : o,
      );
    } else if (Array.isArray(v)) {
      facts[k] = v.length <= 4 ? v : { count: v.length };
    } else if (typeof v === "object" && v !== null) {
      // Counted as the log keeps it: JSON has no undefined fields.
      facts[k] = { count: Object.values(v).filter((x) => x !== undefined).length };
    } else {
      facts[k] = v;
    }
  }
  return facts;
}

/** Turns references back into derivations, from the texts a run log kept. */
export class DrvResolver {
  private readonly parsed = new Map<string, Derivation>();

  constructor(private readonly lookup: (hash: string) => KeptDrv | undefined) {}

  resolve(ref: DrvRef): Derivation {
    const cached = this.parsed.get(ref.$drv);
    if (cached) return cached;
    const kept = this.lookup(ref.$drv);
    if (!kept) throw new Error(`the run log lacks the derivation ${ref.$drv}`);
    const storeDir = inferStoreDir(kept.aterm) ?? StoreDir.nix;
    const drv = parseDerivation(kept.aterm, { name: kept.name, storeDir });
    this.parsed.set(ref.$drv, drv);
    return drv;
  }

  /** `value` with derivation references (at the top or one level down) resolved. */
  decode(value: unknown): unknown {
    if (isDrvRef(value)) return this.resolve(value);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
    const o = value as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(o)) {
      if (isDrvRef(v)) {
        copy ??= { ...o };
        copy[k] = this.resolve(v);
      }
    }
    return copy ?? value;
  }
}
