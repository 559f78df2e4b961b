// `nixstate build --log-format internal-json` against real Nix 2.8's `nix-store --realise
// --log-format internal-json` on the same derivations (each tool its own salted copy, so both
// build): the same activity types, levels, texts and fields, every start stopped once, the same
// results on each activity (builder lines, phases, the last counts) and the same failure message.
// Ids, timings and the order between goals are not compared; `parent` (Nix >= 2.18) is ours only.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../vectors.ts";
import { nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

interface Line {
  action: "start" | "stop" | "result" | "msg";
  id?: number;
  type?: number;
  level?: number;
  parent?: number;
  text?: string;
  fields?: (string | number)[];
  msg?: string;
  raw_msg?: string;
}

// a prints lines (an empty one, one rewritten by \r, one unfinished) and @nix messages; b
// depends on a; c fails.
const dagExpr = (salt: string) => `
let
  mk = name: script: extra: derivation ({
    name = "\${name}-${salt}"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" script ];
  } // extra);
  a = mk "a" ${nixString(
    [
      "echo line one; echo; printf 'abc\\rX\\n'",
      `echo '@nix {"action":"setPhase","phase":"buildPhase"}'`,
      `echo '@nix {"action":"msg","level":1,"msg":"hello from builder"}'`,
      "printf 'no newline'; echo $out > $out",
    ].join("; "),
  )} {};
  b = mk "b" "echo b sees $dep; echo $dep > $out" { dep = a; };
  c = mk "c" "echo failing now; echo second; exit 3" {};
in [ b c ]`;

const ANSI = /\x1b\[[0-9;]*m/g;

describe.runIf(haveRealNix())("--log-format internal-json against Nix 2.8's", () => {
  let nix: NixEnv;
  beforeAll(() => {
    nix = makeNixEnv();
  });
  afterAll(() => nix?.cleanup());

  /** Store paths and the salt out of a text: `/tmp/…/store/<hash>-a-nix.drv` → `a.drv`. */
  const normalise = (salt: string) => (v: unknown) =>
    typeof v === "string"
      ? v
          .replaceAll(new RegExp(`${nix.storeDir}/[0-9a-z]{32}-`, "g"), "")
          .replaceAll(`-${salt}`, "")
      : v;

  const instantiate = (salt: string, expr: string) =>
    nix
      .run("nix-instantiate", [nix.writeExpr(`${salt}.nix`, expr)])
      .trim()
      .split("\n");

  function parse(stderr: string, salt: string): Line[] {
    const n = normalise(salt);
    return stderr
      .split("\n")
      .filter((l) => l.startsWith("@nix "))
      .map((l) => {
        const o = JSON.parse(l.slice(5)) as Line;
        if (o.text !== undefined) o.text = n(o.text) as string;
        if (o.msg !== undefined) o.msg = n(o.msg) as string;
        if (o.raw_msg !== undefined) o.raw_msg = n(o.raw_msg) as string;
        if (o.fields) o.fields = o.fields.map(n) as (string | number)[];
        return o;
      });
  }

  type Command = [string, string[]];
  const nixStore = (args: string[]): Command => [
    "nix-store",
    ["--realise", "--log-format", "internal-json", ...args],
  ];
  const nixstate = (salt: string, args: string[]): Command => [
    process.execPath,
    [
      join(repoRoot, "bin/nixstate.js"),
      "build",
      "--log-format",
      "internal-json",
      "--store-dir",
      nix.storeDir,
      "--state-dir",
      join(nix.root, `ns-${salt}`),
      ...args,
    ],
  ];
  const runSync = (salt: string, [cmd, args]: Command) => {
    const r = spawnSync(cmd, args, { env: nix.env, encoding: "utf8" });
    return { status: r.status, lines: parse(r.stderr, salt), stderr: r.stderr };
  };
  const theirs = (salt: string, args: string[]) => runSync(salt, nixStore(args));
  const ours = (salt: string, args: string[]) => runSync(salt, nixstate(salt, args));

  /** Every start stopped once, after it; results only on open activities. Nothing left open. */
  function pairing(lines: Line[]): void {
    const open = new Set<number>();
    for (const l of lines) {
      if (l.action === "start") {
        expect(open.has(l.id!)).toBe(false);
        open.add(l.id!);
      } else if (l.action === "stop") {
        expect(open.delete(l.id!), `stop of ${l.id}`).toBe(true);
      } else if (l.action === "result") {
        expect(open.has(l.id!), `result on ${l.id}`).toBe(true);
      }
    }
    expect([...open]).toEqual([]);
  }

  /** What can be compared: activities by type and their key (the path they are about). */
  function structure(lines: Line[]) {
    const starts = lines.filter((l) => l.action === "start" && l.type !== 0);
    const byId = new Map(starts.map((s) => [s.id!, s]));
    const typeOf = (id: number) => byId.get(id)?.type;
    const keyOf = (s: Line) =>
      [100, 105, 108, 109].includes(s.type!) ? `${s.type} ${s.fields?.[0]}` : String(s.type);
    const activities = starts
      .map(
        (s) =>
          `${keyOf(s)} level=${s.level} text=${s.text} fields=${JSON.stringify(s.fields ?? [])}`,
      )
      .sort();
    // Results on each activity: builder lines and phases in order, counts only the last.
    const results: Record<string, unknown[]> = {};
    for (const r of lines.filter((l) => l.action === "result")) {
      const s = byId.get(r.id!);
      if (!s) continue;
      const k = `${keyOf(s)} result ${r.type}`;
      if (r.type === 105 || r.type === 106) {
        const sub = r.type === 106 ? ` ${r.fields![0]}` : "";
        results[k + sub] = [r.fields];
      } else {
        results[k] = [...(results[k] ?? []), r.fields];
      }
    }
    const messages = lines
      .filter(
        // The plan ("these 3 derivations will be built:" and a line a path) is compared too.
        (l) => l.action === "msg" && !/you did not specify/.test(l.msg!),
      )
      .map((m) => ({ ...m, msg: m.msg!.replace(ANSI, ""), raw_msg: m.raw_msg?.replace(ANSI, "") }))
      .sort((x, y) => (x.msg < y.msg ? -1 : 1));
    const keys = [
      ...new Set(
        lines.map(
          (l) =>
            `${l.action}: ${Object.keys(l)
              .filter((k) => k !== "parent")
              .join(",")}`,
        ),
      ),
    ].sort();
    return {
      types: [...new Set(starts.map((s) => s.type))].sort(),
      activities,
      results,
      messages,
      keys,
      typeOf,
    };
  }

  it("a DAG with builder output, a dependent build and a failure (-k)", () => {
    const n = theirs("nix", ["-k", ...instantiate("nix", dagExpr("nix"))]);
    const o = ours("ns", ["-k", ...instantiate("ns", dagExpr("ns"))]);
    expect(o.status, o.stderr).toBe(n.status);
    pairing(n.lines);
    pairing(o.lines);
    const a = structure(n.lines);
    const b = structure(o.lines);
    expect(b.types).toEqual(a.types);
    expect(a.types).toEqual([102, 103, 104, 105]);
    expect(b.activities).toEqual(a.activities);
    expect(b.results).toEqual(a.results);
    expect(b.keys).toEqual(a.keys);
    expect(b.results["104 result 105"]).toEqual([[2, 2, 0, 1]]);
    expect(b.results["105 a.drv result 101"]).toEqual([
      ["line one"],
      [""],
      ["Xbc"],
      ["no newline"],
    ]);
    // The builder's message and the failure, as Nix words them (Nix colours the path too).
    expect(b.messages).toEqual(a.messages);
    expect(a.messages.map((m) => m.msg)).toContain(
      "error: builder for 'c.drv' failed with exit code 3",
    );
    // `parent`, as Nix >= 2.18 writes it.
    expect(o.lines.filter((l) => l.action === "start").every((l) => l.parent === 0)).toBe(true);
  });

  it("a build waiting for the lock another process holds on its output", async () => {
    const expr = (salt: string) =>
      `derivation { name = "locked-${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo done > $out" ]; }`;
    const run = async (salt: string, command: (drvs: string[]) => Command) => {
      const drvs = instantiate(salt, expr(salt));
      const out = nix.run("nix-store", ["-q", "--outputs", ...drvs]).trim();
      // Nix's lock on the output, held by another process until the build says it waits (or
      // 20 s went by): `cat` holds it until its input ends.
      const holder = spawn("flock", [`${out}.lock`, "cat"], {
        stdio: ["pipe", "ignore", "ignore"],
      });
      const held = new Promise((r) => holder.on("close", r));
      await new Promise((r) => setTimeout(r, 200));
      const release = setTimeout(() => holder.stdin.end(), 20_000);
      const [cmd, args] = command(drvs);
      const build = spawn(cmd, args, { env: nix.env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      build.stderr.on("data", (c: Buffer) => {
        stderr += c.toString("utf8");
        if (stderr.includes('"type":111')) holder.stdin.end();
      });
      const status = await new Promise<number | null>((r) => build.on("close", r));
      clearTimeout(release);
      holder.stdin.end();
      await held;
      expect(status, stderr).toBe(0);
      const lines = parse(stderr, salt);
      pairing(lines);
      return lines.filter((l) => l.type === 111 || (l.action === "start" && l.type === 105));
    };
    const n = await run("nix", nixStore);
    const o = await run("ns", (d) => nixstate("ns", d));
    const shape = (ls: Line[]) => ls.map(({ id: _, parent: __, ...rest }) => rest);
    expect(shape(o)).toEqual(shape(n));
    expect(n.map((l) => l.type)).toEqual([111, 105]);
    expect(n[0]!.text).toBe("waiting for lock on \x1b[35;1m'locked'\x1b[0m");
  }, 60_000);

  it("substitutions from a file:// binary cache", () => {
    // Both copies built by Nix, written to an uncompressed cache, then deleted: each tool
    // substitutes its own copy back.
    const expr = (salt: string) =>
      `let dep = derivation { name = "dep-${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
       in derivation { name = "top-${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo $dep > $out" ]; inherit dep; }`;
    const cache = `file://${join(nix.root, "cache")}`;
    const drvs = { nix: instantiate("nixs", expr("nixs")), ns: instantiate("ours", expr("ours")) };
    const built = nix
      .run("nix-store", ["--realise", ...drvs.nix, ...drvs.ns])
      .trim()
      .split("\n");
    const closure = nix
      .run("nix-store", ["-qR", ...built])
      .trim()
      .split("\n");
    nix.run("nix", ["copy", "--to", `${cache}?compression=none`, ...closure]);
    nix.run("nix-store", ["--delete", ...closure.filter((p) => !p.endsWith(".drv"))]);
    const n = theirs("nixs", [
      "--option",
      "substituters",
      cache,
      "--option",
      "require-sigs",
      "false",
      ...drvs.nix,
    ]);
    const o = ours("ours", ["--substituters", cache, ...drvs.ns]);
    expect(n.status, n.stderr).toBe(0);
    expect(o.status, o.stderr).toBe(0);
    pairing(n.lines);
    pairing(o.lines);
    const a = structure(n.lines);
    const b = structure(o.lines);
    expect(b.types).toEqual(a.types);
    expect(a.types).toEqual([100, 102, 103, 104, 108, 109]);
    expect(b.activities).toEqual(a.activities);
    const counts = (r: Record<string, unknown[]>) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => /^10[234] /.test(k)));
    expect(counts(b.results)).toEqual(counts(a.results));
    expect(b.results["103 result 105"]).toEqual([[2, 2, 0, 0]]);
    // Each CopyPath is inside its Substitute.
    for (const copy of o.lines.filter((l) => l.action === "start" && l.type === 100)) {
      expect(b.typeOf(copy.parent!)).toBe(108);
    }
  });
});
