import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Machine,
  MachinesFileError,
  normalizeStoreUri,
  parseMachines,
  readMachinesFile,
  renderMachines,
} from "../../src/remote/machines-file.ts";
import { vectorPath } from "../vectors.ts";

const SYS = "x86_64-linux";
const parse = (text: string, files: Record<string, string> = {}) =>
  parseMachines(text, { thisSystem: SYS, readFile: (p) => files[p] });

const machine = (over: Partial<Machine>): Machine => ({
  storeUri: "ssh://h",
  systemTypes: [SYS],
  sshKey: "",
  maxJobs: 1,
  speedFactor: 1,
  supportedFeatures: [],
  mandatoryFeatures: [],
  sshPublicHostKey: "",
  ...over,
});

describe("parseMachines", () => {
  const validPath = vectorPath("nix/libstore-tests/data/machines/valid");
  const badPath = vectorPath("nix/libstore-tests/data/machines/bad_format");

  it.runIf(existsSync(validPath))("reads Nix's `valid` vector: three machines", () => {
    const ms = readMachinesFile(validPath, { thisSystem: SYS });
    expect(ms).toHaveLength(3);
    expect(ms.map((m) => m.storeUri)).toEqual([
      "ssh://nix@scratchy.labs.cs.uu.nl",
      "ssh://nix@itchy.labs.cs.uu.nl",
      "ssh://nix@poochie.labs.cs.uu.nl",
    ]);
    expect(ms[0]).toMatchObject({
      systemTypes: ["i686-linux"],
      sshKey: "/home/nix/.ssh/id_scratchy_auto",
      maxJobs: 8,
      speedFactor: 1,
      supportedFeatures: ["kvm"],
      mandatoryFeatures: [],
      sshPublicHostKey: "",
    });
    expect(ms[1]).toMatchObject({ maxJobs: 8, speedFactor: 2, supportedFeatures: [] });
    expect(ms[2]).toMatchObject({
      maxJobs: 1,
      speedFactor: 2,
      supportedFeatures: ["kvm"],
      mandatoryFeatures: ["benchmark"],
    });
    expect(ms[2]!.sshPublicHostKey).toMatch(/^c3NoLXJzYSBB/);
    // The vector round-trips through render.
    expect(parse(renderMachines(ms))).toEqual(ms);
  });

  it.runIf(existsSync(badPath))("refuses Nix's `bad_format` vector, naming line and field", () => {
    const err = (() => {
      try {
        readMachinesFile(badPath, { thisSystem: SYS });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MachinesFileError);
    const e = err as MachinesFileError;
    expect(e.field).toBe("max-jobs");
    expect(e.line).toBe(1);
    expect(e.source).toBe(badPath);
    expect(e.message).toContain("'eight'");
    expect(readFileSync(badPath, "utf8")).toContain("eight");
  });

  it("applies Nix's defaults and the `-` placeholder", () => {
    expect(parse("nix@host")).toEqual([machine({ storeUri: "ssh://nix@host" })]);
    expect(parse("ssh://a - - - - - -")).toEqual([machine({ storeUri: "ssh://a" })]);
    expect(parse("ssh://a x86_64-linux,aarch64-linux /k 4 0 b,a,b c")).toEqual([
      machine({
        storeUri: "ssh://a",
        systemTypes: ["x86_64-linux", "aarch64-linux"],
        sshKey: "/k",
        maxJobs: 4,
        speedFactor: 1,
        supportedFeatures: ["a", "b"],
        mandatoryFeatures: ["c"],
      }),
    ]);
  });

  it("prepends ssh:// only to schemeless host names", () => {
    expect(normalizeStoreUri("user@host")).toBe("ssh://user@host");
    expect(normalizeStoreUri("host")).toBe("ssh://host");
    for (const u of ["ssh-ng://h", "local", "daemon", "auto", "local?root=/x", "/some/path"]) {
      expect(normalizeStoreUri(u)).toBe(u);
    }
  });

  it("splits on newlines and `;`, drops comments and blank entries", () => {
    const ms = parse("# header\n a 1 ; b # trailing\n\n;;  \nc#x\n");
    expect(ms.map((m) => m.storeUri)).toEqual(["ssh://a", "ssh://b", "ssh://c"]);
    expect(ms[0]!.systemTypes).toEqual(["1"]);
  });

  it("follows @FILE indirection; a missing file contributes nothing", () => {
    const files = { "/m1": "b\n@/m2\n", "/m2": "c; d" };
    expect(parse("a; @/m1 ; @/missing\ne", files).map((m) => m.storeUri)).toEqual(
      ["a", "b", "c", "d", "e"].map((h) => `ssh://${h}`),
    );
  });

  it("reports errors in an @FILE by that file's name and line", () => {
    const e = (() => {
      try {
        parse("a\n@/m", { "/m": "ok\nbad x - 1 +" });
      } catch (err) {
        return err as MachinesFileError;
      }
    })();
    expect(e).toBeInstanceOf(MachinesFileError);
    expect(e).toMatchObject({ source: "/m", line: 2, field: "speed-factor" });
  });

  it("refuses a self-including @FILE instead of recursing forever", () => {
    expect(() => parse("@/loop", { "/loop": "@/loop" })).toThrow(MachinesFileError);
  });

  it("refuses `-` as URI, bad numbers and bad base64", () => {
    expect(() => parse("- x86_64-linux")).toThrow(/field 'uri'/);
    expect(() => parse("a - - -1")).toThrow(/field 'max-jobs'/);
    expect(() => parse("a - - 4294967296")).toThrow(/field 'max-jobs'/);
    expect(() => parse("a - - 1 1.5")).toThrow(/field 'speed-factor'/);
    expect(() => parse("a - - 1 1 - - not*base64")).toThrow(/field 'host-key'/);
    expect(parse("a - - +2 4294967295")[0]).toMatchObject({ maxJobs: 2, speedFactor: 4294967295 });
    // Nix's decoder stops at the first '='.
    expect(parse("a - - - - - - YWJj=*junk")[0]!.sshPublicHostKey).toBe("YWJj=*junk");
  });

  const word = fc.stringMatching(/^[A-Za-z0-9_.+@:/=-]{1,12}$/).filter((s) => s !== "-");
  const uri = word.filter((s) => !s.startsWith("@")).map(normalizeStoreUri);
  const listItem = fc.stringMatching(/^[A-Za-z0-9_.+-]{1,10}$/).filter((s) => s !== "-");
  const arbMachine: fc.Arbitrary<Machine> = fc.record({
    storeUri: uri,
    systemTypes: fc.array(listItem, { maxLength: 3 }),
    sshKey: fc.oneof(fc.constant(""), word),
    maxJobs: fc.nat(0xffffffff),
    speedFactor: fc.integer({ min: 1, max: 0xffffffff }),
    supportedFeatures: fc.uniqueArray(listItem, { maxLength: 3 }).map((a) => a.sort()),
    mandatoryFeatures: fc.uniqueArray(listItem, { maxLength: 3 }).map((a) => a.sort()),
    sshPublicHostKey: fc.oneof(fc.constant(""), fc.base64String({ minLength: 4, maxLength: 40 })),
  });

  it("refuses to render what cannot be read back", () => {
    expect(() => renderMachines([machine({ storeUri: "@/file" })])).toThrow(MachinesFileError);
    expect(() => renderMachines([machine({ sshKey: "a b" })])).toThrow(/field 'ssh-key'/);
    expect(() => renderMachines([machine({ systemTypes: ["a,b"] })])).toThrow(/field 'systems'/);
  });

  it("round-trips render then parse over generated machine lists", () => {
    fc.assert(
      fc.property(fc.array(arbMachine, { maxLength: 6 }), (ms) => {
        expect(parse(renderMachines(ms))).toEqual(ms);
      }),
      { numRuns: 300 },
    );
  });

  it("either parses random text or throws MachinesFileError, nothing else", () => {
    const chars = fc.constantFrom(..."ab-1 ,;#@\t\n+/=*".split(""), "x86_64-linux ", "- ");
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 60 }), (parts) => {
        try {
          parse(parts.join(""), { "/f": parts.join("") });
        } catch (e) {
          expect(e).toBeInstanceOf(MachinesFileError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
