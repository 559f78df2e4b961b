// A batch of run events as the log stores it: one line an event. Recording must cost a build
// little, and a line's stamp and names were a third of its bytes, so batches are written as
// compact lines (`enc` 2, since schema 6):
//
//   code \t goal \t mono \t wall \t invoke \t effect \t JSON
//
// - code: the type's index in TYPE_CODES, or the type itself for one the table lacks;
// - goal: the goal's number in the run (the `goals` table), empty for run-level events;
// - no seq: a batch's events are consecutive from the one its row key names;
// - mono in whole microseconds and wall in milliseconds: the first line's as they are, each
//   other line's as the difference from the line before (wall's empty when 0);
// - invoke and effect of effect events (effect empty when it is the invoke's own name);
// - JSON: the event's other fields.
//
// A batch that compact lines cannot hold exactly is written as full lines, as earlier versions
// wrote every batch (`enc` 0 and 1): `type \t goal \t seq \t mono \t wall \t JSON`. That is
// a batch with a gap in its seq, a stamp that is not a whole number of microseconds or
// milliseconds or beyond 2^53 of them (an injected clock), an effect event without its two names
// or with a tab or newline in one, or a type of digits only.
import type { RunEvent } from "./run-event.ts";

/** The `enc` of a batch: how its lines are written and compressed. */
export const ENC_FULL_DEFLATE_OR_TEXT = 0;
export const ENC_FULL_BROTLI = 1;
export const ENC_COMPACT_BROTLI = 2;

/** Type codes of compact lines. Append only: logs already written read their codes here. */
const TYPE_CODES: readonly string[] = [
  "run.started",
  "run.ended",
  "goal.created",
  "goal.reused",
  "goal.wants",
  "goal.waits",
  "goal.woken",
  "goal.transition",
  "goal.stopped",
  "goal.done",
  "goal.note",
  "effect.started",
  "effect.done",
  "effect.failed",
  "slot.granted",
  "slot.released",
  "lock.busy",
  "builder.started",
  "builder.log",
  "builder.exited",
  "target.started",
  "target.done",
  "worker.cancelAll",
];
const CODE_OF = new Map(TYPE_CODES.map((t, i) => [t, String(i)]));
const TYPE_OF = new Map(TYPE_CODES.map((t, i) => [String(i), t]));

/**
 * Between the events of a batch while it is serialised in one piece: a string element JSON
 * writes as `"\u0001\u0002"`. An event whose own JSON holds it too shows as one part too many,
 * and the batch is serialised event by event instead.
 */
const SEPARATOR = "\u0001\u0002";
const SEPARATOR_JSON = `,${JSON.stringify(SEPARATOR)},`;

export interface EncodedBatch {
  /** The lines, apart by "\n"; "" when there are none. */
  text: string;
  /** How many of the events the lines hold: all, or those before one JSON cannot hold. */
  count: number;
  enc: typeof ENC_FULL_BROTLI | typeof ENC_COMPACT_BROTLI;
  /** Why the lines stop short of the batch's end. */
  error?: unknown;
}

type Loose = RunEvent & { goal?: string; invoke?: unknown; effect?: unknown };

const plainName = (s: unknown): s is string =>
  typeof s === "string" && s !== "" && !s.includes("\t") && !s.includes("\n");

/** Turns a run's batches into lines, numbering its goals as it meets them. */
export class LineEncoder {
  private readonly goalIds = new Map<string, number>();
  /** Goals numbered since this was last taken: the log writes them with the batch. */
  newGoals: [number, string][] = [];

  encode(events: readonly RunEvent[]): EncodedBatch {
    return this.compact(events) ?? this.full(events);
  }

  private goalNumber(goal: string | undefined): number | string {
    if (goal === undefined) return "";
    let n = this.goalIds.get(goal);
    if (n === undefined) {
      n = this.goalIds.size + 1;
      this.goalIds.set(goal, n);
      this.newGoals.push([n, goal]);
    }
    return n;
  }

  /** Compact lines, or undefined when a stamp or a name does not fit them. */
  private compact(events: readonly RunEvent[]): EncodedBatch | undefined {
    const heads: string[] = [];
    const rests: unknown[] = [];
    const first = events[0]?.seq ?? 0;
    let micro = 0;
    let wallBefore = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as Loose;
      const us = Math.round(e.mono * 1000);
      const dMicro = i === 0 ? us : us - micro;
      const dWall = i === 0 ? e.wall : e.wall - wallBefore;
      // Differences must be exact: whole, finite, within 2^53.
      if (e.seq !== first + i || us / 1000 !== e.mono) return;
      if (!Number.isSafeInteger(dMicro) || !Number.isSafeInteger(e.wall)) return;
      if (!Number.isSafeInteger(us) || !Number.isSafeInteger(dWall)) return;
      let code = CODE_OF.get(e.type);
      if (code === undefined) {
        if (!plainName(e.type) || /^\d+$/.test(e.type)) return;
        code = e.type;
      }
      let names = "\t";
      let rest: object;
      if (e.type.startsWith("effect.")) {
        const { type: _t, seq: _s, mono: _m, wall: _w, goal: _g, invoke, effect, ...r } = e;
        if (!plainName(invoke) || !plainName(effect)) return;
        names = effect === invoke ? `${invoke}\t` : `${invoke}\t${effect}`;
        rest = r;
      } else {
        const { type: _t, seq: _s, mono: _m, wall: _w, goal: _g, ...r } = e;
        rest = r;
      }
      heads.push(
        `${code}\t${this.goalNumber(e.goal)}\t${dMicro}\t${dWall === 0 ? "" : dWall}\t${names}\t`,
      );
      micro = us;
      wallBefore = e.wall;
      if (rests.length > 0) rests.push(SEPARATOR);
      rests.push(rest);
    }
    return { ...joinLines(heads, rests), enc: ENC_COMPACT_BROTLI };
  }

  /** Full lines, as earlier versions wrote them. */
  private full(events: readonly RunEvent[]): EncodedBatch {
    const heads: string[] = [];
    const rests: unknown[] = [];
    for (const event of events) {
      const { type, seq, mono, wall, goal, ...rest } = event as Loose;
      heads.push(`${type}\t${this.goalNumber(goal)}\t${seq}\t${mono}\t${wall}\t`);
      if (rests.length > 0) rests.push(SEPARATOR);
      rests.push(rest);
    }
    return { ...joinLines(heads, rests), enc: ENC_FULL_BROTLI };
  }
}

/**
 * Each head followed by its event's JSON: one JSON.stringify for the batch (a call an event
 * costs 20–25 % more), split apart again; up to the first event JSON cannot hold, if one can't.
 */
function joinLines(heads: string[], rests: unknown[]): Omit<EncodedBatch, "enc"> {
  let parts: string[] | undefined;
  let error: unknown;
  try {
    parts = JSON.stringify(rests).slice(1, -1).split(SEPARATOR_JSON);
  } catch {
    // Found below, event by event.
  }
  if (parts === undefined || parts.length !== heads.length) {
    parts = [];
    for (let i = 0; i < heads.length; i++) {
      try {
        parts.push(JSON.stringify(rests[2 * i]));
      } catch (e) {
        error = e;
        break;
      }
    }
  }
  let text = "";
  for (let i = 0; i < parts.length; i++) text += (i === 0 ? "" : "\n") + heads[i]! + parts[i]!;
  return error === undefined ? { text, count: parts.length } : { text, count: parts.length, error };
}

export interface LineFilter {
  /** Only this goal's events. */
  goal?: string;
  /** Only events of these types (the others' JSON is not parsed). */
  types?: ReadonlySet<string>;
  /** No event after this sequence number. */
  until: number;
}

/**
 * Appends a batch's events that pass `filter` to `out`; false once past `filter.until`.
 * `firstSeq` is the batch's first sequence number (its row key), `goals` the run's goal numbers.
 */
export function decodeLines(
  text: string,
  enc: number,
  firstSeq: number,
  goals: ReadonlyMap<number, string>,
  filter: LineFilter,
  out: RunEvent[],
): boolean {
  const compact = enc === ENC_COMPACT_BROTLI;
  const want = compact ? 6 : 5;
  let micro = 0;
  let wall = 0;
  let i = 0;
  for (const line of text.split("\n")) {
    const tabs: number[] = [];
    for (let t = line.indexOf("\t"); t >= 0 && tabs.length < want; t = line.indexOf("\t", t + 1))
      tabs.push(t);
    const [t1, t2, t3, t4, t5, t6] = tabs as [number, number, number, number, number, number];
    let type = line.slice(0, t1);
    let seq: number;
    let mono: number;
    let names: [string, string] | undefined;
    if (compact) {
      seq = firstSeq + i;
      const dMicro = Number(line.slice(t2 + 1, t3));
      const dWall = t4 > t3 + 1 ? Number(line.slice(t3 + 1, t4)) : 0;
      micro = i === 0 ? dMicro : micro + dMicro;
      wall = i === 0 ? dWall : wall + dWall;
      mono = micro / 1000;
      // A code this version lacks (digits only: no type is) reads as what it is.
      type = TYPE_OF.get(type) ?? (/^\d+$/.test(type) ? `unknown type ${type}` : type);
      if (t5 > t4 + 1) {
        const invoke = line.slice(t4 + 1, t5);
        names = [invoke, t6 > t5 + 1 ? line.slice(t5 + 1, t6) : invoke];
      }
    } else {
      seq = Number(line.slice(t2 + 1, t3));
      mono = Number(line.slice(t3 + 1, t4));
      wall = Number(line.slice(t4 + 1, t5));
    }
    i++;
    if (seq > filter.until) return false;
    const goal = t2 > t1 + 1 ? goals.get(Number(line.slice(t1 + 1, t2))) : undefined;
    if (filter.goal !== undefined && goal !== filter.goal) continue;
    if (filter.types !== undefined && !filter.types.has(type)) continue;
    const fields = JSON.parse(line.slice((compact ? t6 : t5) + 1)) as object;
    const head: Record<string, unknown> =
      goal === undefined ? { type, seq, mono, wall } : { type, goal, seq, mono, wall };
    if (names) {
      head.invoke = names[0];
      head.effect = names[1];
    }
    out.push({ ...head, ...fields } as unknown as RunEvent);
  }
  return true;
}

/** The wall time of a batch's last event. */
export function lastWall(text: string, enc: number): number {
  if (enc !== ENC_COMPACT_BROTLI)
    return Number(text.slice(text.lastIndexOf("\n") + 1).split("\t")[4]);
  let wall = 0;
  for (let at = 0; at < text.length; ) {
    const end = text.indexOf("\n", at);
    const line = text.slice(at, end < 0 ? text.length : end);
    const f = line.split("\t", 4);
    wall += f[3] === "" ? 0 : Number(f[3]);
    if (end < 0) break;
    at = end + 1;
  }
  return wall;
}
