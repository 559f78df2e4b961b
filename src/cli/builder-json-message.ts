// A builder may talk to Nix through its output: a line `@nix {json}` is a message, not a log
// line (stdenv's `setPhase`, a `msg`, activities of its own). Nix 2.8 reads them in
// handleJSONLogMessage: a builder is untrusted, so of the activities it starts only file
// transfers (type 101) are kept; a line that is not valid JSON is reported ("bad JSON log
// message from builder: …") and kept as a log line.

export const BUILDER_MESSAGE_PREFIX = "@nix ";

/** Nix's ActivityType of file transfers, the one kind an untrusted builder may start. */
const FILE_TRANSFER = 101;

export type BuilderMessage =
  /** Not JSON, or not the shape Nix wants: Nix says so and logs the line as it is. */
  | { kind: "invalid"; error: string }
  | { kind: "setPhase"; phase: string }
  | { kind: "msg"; level: number; msg: string }
  /** The builder starts a file transfer activity (its own id, to be mapped to ours). */
  | {
      kind: "start";
      id: number;
      type: number;
      level: number;
      text: string;
      fields: (string | number)[];
    }
  | { kind: "stop"; id: number }
  | { kind: "result"; id: number; type: number; fields: (string | number)[] }
  /** Valid, but nothing comes of it (an activity type a builder may not start, another action). */
  | { kind: "ignored" };

class MessageShapeError extends Error {}

function str(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new MessageShapeError(`'${key}' must be a string`);
  return v;
}

function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v))
    throw new MessageShapeError(`'${key}' must be an integer`);
  return v;
}

function fields(o: Record<string, unknown>): (string | number)[] {
  const v = o.fields;
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((f) => typeof f === "string" || Number.isInteger(f)))
    throw new MessageShapeError("'fields' must be a list of strings and integers");
  return v as (string | number)[];
}

/** The message a builder's log line carries; undefined when the line is a plain log line. */
export function parseBuilderMessage(line: string): BuilderMessage | undefined {
  if (!line.startsWith(BUILDER_MESSAGE_PREFIX)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(line.slice(BUILDER_MESSAGE_PREFIX.length));
  } catch (e) {
    return { kind: "invalid", error: (e as Error).message };
  }
  try {
    if (typeof json !== "object" || json === null || Array.isArray(json))
      throw new MessageShapeError("not a JSON object");
    const o = json as Record<string, unknown>;
    switch (str(o, "action")) {
      case "start": {
        const type = num(o, "type");
        if (type !== FILE_TRANSFER) return { kind: "ignored" };
        return {
          kind: "start",
          id: num(o, "id"),
          type,
          level: num(o, "level"),
          text: str(o, "text"),
          fields: fields(o),
        };
      }
      case "stop":
        return { kind: "stop", id: num(o, "id") };
      case "result":
        return { kind: "result", id: num(o, "id"), type: num(o, "type"), fields: fields(o) };
      case "setPhase":
        return { kind: "setPhase", phase: str(o, "phase") };
      case "msg":
        return { kind: "msg", level: num(o, "level"), msg: str(o, "msg") };
      default:
        return { kind: "ignored" };
    }
  } catch (e) {
    if (e instanceof MessageShapeError) return { kind: "invalid", error: e.message };
    throw e;
  }
}

/** Nix's words for a message it could not read. */
export function badMessageText(error: string): string {
  return `bad JSON log message from builder: ${error}`;
}
