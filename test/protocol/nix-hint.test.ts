// Nix 2.8's coloured message renderings: what hintfmt colours, and what a goal's and a thrown
// error's text add, as recorded in real Nix 2.8 serve sessions.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  Bold,
  buildResultErrorText,
  errorText,
  hintfmt,
  stripAnsi,
  Uncoloured,
} from "../../src/protocol/nix-hint.ts";

const text = fc.string().filter((s) => !s.includes("\x1b"));

describe("Nix 2.8 message renderings", () => {
  it("colours arguments magenta bold, leaves uncoloured ones and the format as they are", () => {
    const h = hintfmt`${"/nix/store/x.drv"} timed out after ${1} seconds${new Uncoloured(" of silence")}`;
    expect(h.plain).toBe("/nix/store/x.drv timed out after 1 seconds of silence");
    expect(h.ansi).toBe(
      "\x1b[35;1m/nix/store/x.drv\x1b[0m timed out after \x1b[35;1m1\x1b[0m seconds of silence",
    );
    expect(hintfmt`run '${new Bold("nixstate log x")}'`.ansi).toBe(
      "run '\x1b[1mnixstate log x\x1b[0m'",
    );
  });

  it("gives a goal's error ANSI normal first and a thrown one a red 'error:', as Nix 2.8's bytes", () => {
    const h = hintfmt`builder for '${"/nix/store/a.drv"}' ${new Uncoloured("failed with exit code 3")}`;
    // build-derivation-fail-0x207 and build-paths-0x207.
    const goal = { errorMsg: h.plain, errorAnsi: h.ansi };
    expect(buildResultErrorText(goal)).toBe(
      "\x1b[0mbuilder for '\x1b[35;1m/nix/store/a.drv\x1b[0m' failed with exit code 3",
    );
    const rethrown =
      "\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m/nix/store/a.drv\x1b[0m' failed with exit code 3";
    expect(errorText(goal)).toBe(rethrown);
    expect(errorText(h)).toBe(rethrown);
    // A thrown error (build-derivation-missing-input-0x207) is sent as its msg() in both replies.
    expect(buildResultErrorText({ ...goal, errorThrown: true })).toBe(rethrown);
    expect(errorText({ ...goal, errorThrown: true })).toBe(rethrown);
    expect(errorText({ errorMsg: "plain" })).toBe("\x1b[31;1merror:\x1b[0m plain");
    expect(buildResultErrorText({ errorMsg: "plain" })).toBe("plain");
  });

  test.prop([fc.array(fc.tuple(text, fc.oneof(text, fc.nat())), { maxLength: 5 }), text])(
    "the ANSI rendering without its escapes is the plain one",
    (parts, last) => {
      const strings = Object.assign([...parts.map(([s]) => s), last], {
        raw: [...parts.map(([s]) => s), last],
      });
      const h = hintfmt(strings, ...parts.map(([, a]) => a));
      expect(stripAnsi(h.ansi)).toBe(h.plain);
      const r = { errorMsg: h.plain, errorAnsi: h.ansi };
      expect(stripAnsi(buildResultErrorText(r))).toBe(h.plain);
      expect(stripAnsi(errorText(r))).toBe(`error: ${h.plain}`);
    },
  );
});
