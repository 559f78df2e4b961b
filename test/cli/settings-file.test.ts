// nixstate.conf's syntax: nix.conf's lines, comments, includes, and the typed error for the rest.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  parseSettingsFile,
  printSettings,
  SettingsFileError,
} from "../../src/cli/settings/settings-file.ts";

const pairs = (text: string, files: Record<string, string> = {}) =>
  parseSettingsFile(text, "/etc/nixstate/nixstate.conf", (p) => files[p]).map((l) => [
    l.name,
    l.value,
    `${l.file}:${l.line}`,
  ]);

describe("parseSettingsFile", () => {
  it("reads name = value lines as Nix does: comments anywhere, words joined by one space", () => {
    const text = [
      "# a comment",
      "",
      "max-jobs = 4   # trailing comment",
      "\tsubstituters =   file:///a \t file:///b",
      "builders =",
      "sandbox = true#no space before the comment",
    ].join("\n");
    expect(pairs(text)).toEqual([
      ["max-jobs", "4", "/etc/nixstate/nixstate.conf:3"],
      ["substituters", "file:///a file:///b", "/etc/nixstate/nixstate.conf:4"],
      ["builders", "", "/etc/nixstate/nixstate.conf:5"],
      ["sandbox", "true", "/etc/nixstate/nixstate.conf:6"],
    ]);
  });

  it("follows include relative to the including file; !include may be missing", () => {
    const files = {
      "/etc/nixstate/more.conf": "cores = 2\ninclude sub/last.conf\n",
      "/etc/nixstate/sub/last.conf": "\n\nkeep-going = true\n",
    };
    expect(
      pairs("max-jobs = 1\ninclude more.conf\n!include nope.conf\ntimeout = 5", files),
    ).toEqual([
      ["max-jobs", "1", "/etc/nixstate/nixstate.conf:1"],
      ["cores", "2", "/etc/nixstate/more.conf:1"],
      ["keep-going", "true", "/etc/nixstate/sub/last.conf:3"],
      ["timeout", "5", "/etc/nixstate/nixstate.conf:4"],
    ]);
  });

  it.each([
    ["max-jobs 4", 1, "illegal configuration line 'max-jobs 4'"],
    ["\nmax-jobs=4", 2, "illegal configuration line 'max-jobs=4'"],
    ["a = b\nsandbox", 2, "illegal configuration line 'sandbox'"],
    ["include a.conf b.conf", 1, "illegal configuration line"],
    ["include missing.conf", 1, "included file '/etc/nixstate/missing.conf' not found"],
  ])("rejects %j at its line", (text, line, message) => {
    const e = (() => {
      try {
        parseSettingsFile(text, "/etc/nixstate/nixstate.conf");
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(SettingsFileError);
    expect((e as SettingsFileError).line).toBe(line);
    expect((e as Error).message).toContain(`/etc/nixstate/nixstate.conf:${line}: ${message}`);
  });

  it("stops a file that includes itself", () => {
    const files = { "/etc/nixstate/nixstate.conf": "include nixstate.conf" };
    expect(() => pairs(files["/etc/nixstate/nixstate.conf"], files)).toThrow(
      /includes nest deeper than/,
    );
  });

  const word = fc.stringMatching(/^[^\s#]+$/);
  const name = word.filter((w) => w !== "include" && w !== "!include");
  const setting = fc.record({
    name,
    value: fc.array(word, { maxLength: 4 }).map((ws) => ws.join(" ")),
  });

  it("reads back what printSettings prints (property)", () => {
    fc.assert(
      fc.property(fc.array(setting, { maxLength: 20 }), (settings) => {
        const back = parseSettingsFile(printSettings(settings), "/x.conf").map(
          ({ name, value }) => ({ name, value }),
        );
        expect(back).toEqual(settings);
      }),
    );
  });

  it("throws nothing but SettingsFileError, whatever the text (property)", () => {
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom("a", "=", " ", "\t", "\n", "#", "include", "!", ".") }),
      fc.string(),
    );
    fc.assert(
      fc.property(text, fc.option(text), (main, included) => {
        try {
          parseSettingsFile(main, "/x/a.conf", () => included ?? undefined);
        } catch (e) {
          expect(e).toBeInstanceOf(SettingsFileError);
        }
      }),
    );
  });
});
