// The known settings and their effective values: defaults < nixstate.conf < NIXSTATE_<NAME>.
import { Command } from "commander";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { registerBuildCommands } from "../../src/cli/commands/build.ts";
import { registerServeCommands } from "../../src/cli/commands/serve.ts";
import { applySettings, settingNameOf } from "../../src/cli/settings/apply-settings.ts";
import { SETTINGS } from "../../src/cli/settings/known-settings.ts";
import {
  envVariableOf,
  loadSettings,
  parseSettingValue,
  SettingValueError,
} from "../../src/cli/settings/settings.ts";

const CONF = "/home/u/.config/nixstate/nixstate.conf";
const env = { XDG_CONFIG_HOME: "/home/u/.config" };

function load(conf: string | undefined, vars: Record<string, string> = {}, files = {}) {
  const all: Record<string, string | undefined> = { [CONF]: conf, ...files };
  return loadSettings({ ...env, ...vars }, (p) => all[p]);
}

const effective = (s: ReturnType<typeof load>, name: string) => s.values.get(name)?.value;

describe("loadSettings", () => {
  it("takes the file over the defaults and the environment over the file", () => {
    const s = load("max-jobs = 3\ncores = 5\n", { NIXSTATE_MAX_JOBS: "2" });
    expect(effective(s, "max-jobs")).toBe("2");
    expect(s.values.get("max-jobs")?.source).toEqual({
      kind: "env",
      variable: "NIXSTATE_MAX_JOBS",
    });
    expect(effective(s, "cores")).toBe("5");
    expect(s.values.get("cores")?.source).toEqual({ kind: "file", file: CONF, line: 2 });
    expect(s.values.get("timeout")?.source).toEqual({ kind: "default" });
    expect(s.file).toBe(CONF);
  });

  it("reads NIXSTATE_CONF instead, and fails when the file it names is missing", () => {
    const s = load(
      undefined,
      { NIXSTATE_CONF: "/etc/other.conf" },
      { "/etc/other.conf": "timeout = 9" },
    );
    expect(effective(s, "timeout")).toBe("9");
    expect(() => load(undefined, { NIXSTATE_CONF: "/etc/none.conf" })).toThrow(
      /NIXSTATE_CONF names '\/etc\/none.conf', which does not exist/,
    );
    // Without NIXSTATE_CONF, no file is no settings.
    expect(load(undefined).file).toBeUndefined();
  });

  it("appends extra-<list> to what is set so far; later lines win", () => {
    const s = load(
      "substituters = file:///a\nextra-substituters = file:///b  file:///c\nmax-jobs = 1\nmax-jobs = auto",
      { NIXSTATE_EXTRA_SUBSTITUTERS: "file:///d" },
    );
    expect(effective(s, "substituters")).toBe("file:///a file:///b file:///c file:///d");
    expect(effective(s, "max-jobs")).toBe("auto");
  });

  it("knows Nix's older names and Booleans", () => {
    const s = load(
      "build-max-jobs = 7\nbuild-use-sandbox = yes\nkeep-going = true\nsubstitute = 0",
    );
    expect(effective(s, "max-jobs")).toBe("7");
    expect(effective(s, "sandbox")).toBe(true);
    expect(effective(s, "keep-going")).toBe(true);
    expect(effective(s, "substitute")).toBe(false);
  });

  it("warns about unknown settings (and extra- of a non-list), naming the file and line", () => {
    const s = load("frobnicate = 1\n\nextra-max-jobs = 2\n");
    expect(s.warnings).toEqual([
      `warning: unknown setting 'frobnicate' (${CONF}:1)`,
      `warning: unknown setting 'extra-max-jobs' (${CONF}:3)`,
    ]);
    expect(effective(s, "max-jobs")).toBe("1");
  });

  it("rejects a value its setting cannot have, naming where it was given", () => {
    expect(() => load("\nmax-jobs = many")).toThrow(
      new SettingValueError(
        `${CONF}:2: setting 'max-jobs' wants 'auto' or a whole number, not 'many'`,
      ),
    );
    expect(() => load("", { NIXSTATE_SANDBOX: "maybe" })).toThrow(
      /^NIXSTATE_SANDBOX: setting 'sandbox' wants true or false, not 'maybe'$/,
    );
  });

  it("defaults the store directory from the state directory the file sets", () => {
    const s = load("state-dir = /srv/nixstate");
    expect(effective(s, "store-dir")).toBe("/srv/nixstate/store");
  });

  it("takes an empty directory setting for none (NIXSTATE_STORE_DIR= is the default)", () => {
    const s = load("state-dir = /srv/nixstate\nstore-root =", { NIXSTATE_STORE_DIR: "" });
    expect(effective(s, "store-dir")).toBe("/srv/nixstate/store");
    expect(s.values.get("store-dir")?.source).toEqual({ kind: "default" });
    expect(s.values.get("store-root")?.source).toEqual({ kind: "default" });
  });

  it("names each environment variable after its setting", () => {
    expect(envVariableOf("max-silent-time")).toBe("NIXSTATE_MAX_SILENT_TIME");
  });

  it("parses every kind of value or throws SettingValueError (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...SETTINGS), fc.string(), (def, text) => {
        try {
          const v = parseSettingValue(def, text, "here");
          // What it gives back reads back the same.
          expect(parseSettingValue(def, String(v), "here")).toEqual(v);
        } catch (e) {
          expect(e).toBeInstanceOf(SettingValueError);
        }
      }),
    );
  });
});

describe("applySettings", () => {
  const program = () => {
    const p = new Command().exitOverride();
    registerBuildCommands(p);
    registerServeCommands(p);
    // Only the options are looked at here, not what the commands do.
    for (const c of p.commands) c.action(() => {});
    return p;
  };

  it("has the defaults build's flags had before settings (no drift between the two)", () => {
    const build = program().commands.find((c) => c.name() === "build")!;
    const defaults = load(undefined);
    for (const o of build.options) {
      const name = settingNameOf(o);
      const s = name === undefined ? undefined : defaults.values.get(name);
      if (!s || o.defaultValue === undefined) continue;
      expect([name, String(o.defaultValue)]).toEqual([name, String(s.value)]);
    }
  });

  it("makes settings the flags' defaults; flags still win; Booleans get both halves", () => {
    const p = program();
    applySettings(p, load("max-jobs = 3\nkeep-going = true\nsubstitute = false\nrecord = false"));
    const build = p.commands.find((c) => c.name() === "build")!;
    p.parse(["build", "x.drv"], { from: "user" });
    expect(build.opts()).toMatchObject({
      maxJobs: "3",
      keepGoing: true,
      substitute: false,
      record: false,
    });
    p.parse(["build", "-j", "1", "--no-keep-going", "--substitute", "x.drv"], { from: "user" });
    expect(build.opts()).toMatchObject({ maxJobs: "1", keepGoing: false, substitute: true });
    // serve has --no-record and --system-features too.
    p.parse(["serve"], { from: "user" });
    expect(p.commands.find((c) => c.name() === "serve")!.opts().record).toBe(false);
  });

  it("checks a setting against the flag's choices", () => {
    expect(() => applySettings(program(), load("log-format = fancy"))).toThrow(
      new RegExp(
        `^${CONF}:1: setting 'log-format' wants one of raw, internal-json, .*, not 'fancy'$`,
      ),
    );
  });
});
