// Nix's remote builders specification: what `--builders` and /etc/nix/machines hold. Parsed the
// way Nix 2.8 does it (src/libstore/machines.cc): entries separated by newlines or `;`, `#` starts
// a comment anywhere, `@FILE` splices in another file (a missing file is silently empty), and
// each entry is `URI [systems [ssh-key [max-jobs [speed-factor [supported-features
// [mandatory-features [base64-host-key]]]]]]]` separated by whitespace, `-` meaning the default.
import { readFileSync } from "node:fs";
import { nixSystem } from "../builder/build-settings.ts";

export interface Machine {
  /** Store URI; schemeless `user@host` gets `ssh://` prepended, as Nix ≥ 2.4 does. */
  storeUri: string;
  /** Systems this machine builds for, in file order (Nix keeps duplicates). */
  systemTypes: string[];
  /** Path of the ssh private key, "" for ssh's default. */
  sshKey: string;
  maxJobs: number;
  /** At least 1: Nix raises 0 to 1. */
  speedFactor: number;
  /** Sorted and unique, like Nix's std::set. */
  supportedFeatures: string[];
  /** Sorted and unique; a derivation must require all of them to use this machine. */
  mandatoryFeatures: string[];
  /** Base64 of the host's public key line, "" when not pinned. */
  sshPublicHostKey: string;
}

export const MACHINE_FIELDS = [
  "uri",
  "systems",
  "ssh-key",
  "max-jobs",
  "speed-factor",
  "supported-features",
  "mandatory-features",
  "host-key",
] as const;
export type MachineField = (typeof MACHINE_FIELDS)[number];

export class MachinesFileError extends Error {
  override name = "MachinesFileError";
  constructor(
    /** Where the entry came from: "--builders" text or the path of an @FILE. */
    readonly source: string,
    /** 1-based line of the entry in that source. */
    readonly line: number,
    readonly field: MachineField | undefined,
    readonly entry: string,
    detail: string,
  ) {
    super(
      `bad machine specification in ${source} line ${line}${field ? `, field '${field}'` : ""}: ${detail} (entry: '${entry}')`,
    );
  }
}

export interface ParseMachinesOptions {
  /** The default for an unset systems field; Nix uses its own `system` setting. */
  thisSystem?: string;
  /** Names the text in error messages. */
  source?: string;
  /** Reads an @FILE; undefined means the file does not exist (then it contributes nothing). */
  readFile?: (path: string) => string | undefined;
}

const MAX_INDIRECTION = 32;

function readFileIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

function tokenize(s: string, separators: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (const c of s) {
    if (separators.includes(c)) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

const WHITESPACE = " \t\n\r";

function trim(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && WHITESPACE.includes(s[a]!)) a++;
  while (b > a && WHITESPACE.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

interface Entry {
  source: string;
  line: number;
  text: string;
}

function expandEntries(
  text: string,
  source: string,
  readFile: (path: string) => string | undefined,
  depth: number,
): Entry[] {
  const result: Entry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    for (const part of lines[i]!.split(";")) {
      let entry = trim(part);
      const hash = entry.indexOf("#");
      if (hash >= 0) entry = entry.slice(0, hash);
      if (entry === "") continue;
      if (entry.startsWith("@")) {
        const path = trim(entry.slice(1));
        if (depth >= MAX_INDIRECTION) {
          throw new MachinesFileError(
            source,
            i + 1,
            undefined,
            entry,
            `more than ${MAX_INDIRECTION} nested @FILE indirections; does '${path}' include itself?`,
          );
        }
        const inner = path === "" ? undefined : readFile(path);
        if (inner !== undefined) result.push(...expandEntries(inner, path, readFile, depth + 1));
        continue;
      }
      result.push({ source, line: i + 1, text: entry });
    }
  }
  return result;
}

const BASE64_CHARS = /^[A-Za-z0-9+/\n]*$/;
const UNSIGNED = /^\+?[0-9]+$/;
const UINT_MAX = 0xffffffff;

function isStoreUriAsIs(uri: string): boolean {
  return (
    uri.includes("://") ||
    uri.includes("/") ||
    ["auto", "daemon", "local"].includes(uri) ||
    ["auto?", "daemon?", "local?", "?"].some((p) => uri.startsWith(p))
  );
}

/** Nix ≥ 2.4's backwards compatibility: a bare `host` or `user@host` is an ssh:// store. */
export function normalizeStoreUri(uri: string): string {
  return isStoreUriAsIs(uri) ? uri : `ssh://${uri}`;
}

const sortedSet = (items: string[]): string[] =>
  [...new Set(items)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

function parseEntry(entry: Entry, thisSystem: string): Machine {
  const tokens = tokenize(entry.text, WHITESPACE);
  const isSet = (i: number) => tokens.length > i && tokens[i] !== "-";
  const fail = (i: number, detail: string): never => {
    throw new MachinesFileError(entry.source, entry.line, MACHINE_FIELDS[i], entry.text, detail);
  };
  const unsigned = (i: number, what: string): number => {
    const t = tokens[i]!;
    const n = UNSIGNED.test(t) ? Number(t) : Number.NaN;
    if (!(n <= UINT_MAX)) {
      return fail(
        i,
        `${what} '${t}' is not an unsigned 32-bit integer; write a number or '-' for the default (1)`,
      );
    }
    return n;
  };
  if (!isSet(0)) fail(0, "the first column must be the store URI, not '-'");
  let hostKey = "";
  if (isSet(7)) {
    hostKey = tokens[7]!;
    const eq = hostKey.indexOf("=");
    if (!BASE64_CHARS.test(eq >= 0 ? hostKey.slice(0, eq) : hostKey)) {
      fail(7, "the host key is not valid base64 (base64 of the host's public key line)");
    }
  }
  return {
    storeUri: normalizeStoreUri(tokens[0]!),
    systemTypes: isSet(1) ? tokenize(tokens[1]!, ",") : [thisSystem],
    sshKey: isSet(2) ? tokens[2]! : "",
    maxJobs: isSet(3) ? unsigned(3, "max-jobs") : 1,
    speedFactor: Math.max(1, isSet(4) ? unsigned(4, "speed-factor") : 1),
    supportedFeatures: isSet(5) ? sortedSet(tokenize(tokens[5]!, ",")) : [],
    mandatoryFeatures: isSet(6) ? sortedSet(tokenize(tokens[6]!, ",")) : [],
    sshPublicHostKey: hostKey,
  };
}

/**
 * Parses a builders specification (the value of `--builders`, or a machines file's text).
 * Throws MachinesFileError naming the entry and field at the first malformed entry.
 */
export function parseMachines(text: string, options: ParseMachinesOptions = {}): Machine[] {
  const thisSystem = options.thisSystem ?? nixSystem();
  const entries = expandEntries(
    text,
    options.source ?? "builders",
    options.readFile ?? readFileIfExists,
    0,
  );
  return entries.map((e) => parseEntry(e, thisSystem));
}

/** Reads a machines file (e.g. /etc/nix/machines); a missing file means no machines, as in Nix. */
export function readMachinesFile(path: string, options: ParseMachinesOptions = {}): Machine[] {
  const readFile = options.readFile ?? readFileIfExists;
  const text = readFile(path);
  return text === undefined ? [] : parseMachines(text, { ...options, source: path, readFile });
}

const UNWRITABLE = /[\s#;]/;

function field(m: Machine, value: string, name: MachineField, list: boolean): string {
  if (value === "" || value === "-" || UNWRITABLE.test(value) || (list && value.includes(","))) {
    throw new MachinesFileError(
      "render",
      1,
      name,
      m.storeUri,
      `'${value}' cannot be written in a machines file (empty, '-', or has whitespace, '#', ';'${list ? " or ','" : ""})`,
    );
  }
  return value;
}

/** One machines-file line for a machine, such that parseMachines gives the machine back. */
export function renderMachine(m: Machine): string {
  const list = (items: string[], name: MachineField) =>
    items.map((s) => field(m, s, name, true)).join(",");
  const cols = [
    // A leading '@' would read back as an @FILE indirection.
    field(m, m.storeUri.startsWith("@") ? "" : m.storeUri, "uri", false),
    // An empty systems list must not read back as the default: a lone "," is set but empty.
    m.systemTypes.length === 0 ? "," : list(m.systemTypes, "systems"),
    m.sshKey === "" ? "-" : field(m, m.sshKey, "ssh-key", false),
    String(m.maxJobs),
    String(m.speedFactor),
    m.supportedFeatures.length === 0 ? "-" : list(m.supportedFeatures, "supported-features"),
    m.mandatoryFeatures.length === 0 ? "-" : list(m.mandatoryFeatures, "mandatory-features"),
    m.sshPublicHostKey === "" ? "-" : field(m, m.sshPublicHostKey, "host-key", false),
  ];
  while (cols.length > 1 && cols[cols.length - 1] === "-") cols.pop();
  return cols.join(" ");
}

export function renderMachines(machines: readonly Machine[]): string {
  return machines.map((m) => `${renderMachine(m)}\n`).join("");
}
