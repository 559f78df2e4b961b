// Effect inputs are logged as their key facts; replay computes the same facts from what the
// machine passes, so the facts of a value and of its JSON round trip must be equal.

import { createHash } from "node:crypto";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { atermParsedFrom, parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { BasicDerivation } from "../../src/derivation/derivation.ts";
import { EventEncoder, inputFacts, type KeptDrv } from "../../src/events/event-values.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";

const value = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.option(fc.integer(), { nil: undefined })),
);
const input = fc.dictionary(fc.constantFrom("drv", "info", "paths", "outputs", "mode", "x"), value);

describe("input facts", () => {
  test.prop([input])("are the same for a value and for its JSON round trip", (i) => {
    const facts = JSON.parse(JSON.stringify(inputFacts(i)) ?? "null");
    const back = JSON.parse(JSON.stringify(inputFacts(JSON.parse(JSON.stringify(i)))) ?? "null");
    expect(back).toEqual(facts);
  });

  it("keep short lists, count long ones and maps, and drop what the goal says already", () => {
    expect(
      inputFacts({
        drvPath: "/s/x.drv",
        goalId: 3,
        drv: {},
        paths: ["a", "b"],
        inputPaths: ["a", "b", "c", "d", "e"],
        info: { path: "/s/p", deriver: undefined, ca: undefined },
        outputs: [{ name: "out", path: "/s/o", id: "i", valid: true, wanted: true }],
        mode: "normal",
      }),
    ).toEqual({
      paths: ["a", "b"],
      inputPaths: { count: 5 },
      info: { count: 1 },
      outputs: [{ name: "out", valid: true, wanted: true }],
      mode: "normal",
    });
  });
});

describe("derivation references", () => {
  const drv: BasicDerivation = {
    name: "hello",
    outputs: new Map([
      ["out", { type: "inputAddressed", path: "/s/00000000000000000000000000000000-hello" }],
    ]),
    inputSrcs: [],
    platform: "x86_64-linux",
    builder: "/bin/sh",
    args: ["-c", "echo hi > $out"],
    env: new Map([["out", "/s/00000000000000000000000000000000-hello"]]),
  };

  it("keep the text a derivation was read from, and print one that was never read", () => {
    const kept: KeptDrv[] = [];
    const encoder = new EventEncoder((d) => kept.push(d));
    const bytes = printDerivation(drv);
    const parsed = parseDerivation(Buffer.from(bytes), {
      name: "hello",
      storeDir: new StoreDir("/s"),
    });
    const ref = encoder.drvRef(parsed);
    expect(kept[0]!.aterm).toBe(atermParsedFrom(parsed));
    expect(ref.$drv).toBe(createHash("sha256").update(bytes).digest("hex"));
    // A derivation built in memory has no text: it is printed, to the same bytes.
    const built = { ...drv, env: new Map(drv.env) };
    expect(atermParsedFrom(built)).toBeUndefined();
    expect(encoder.drvRef(built)).toEqual(ref);
    expect(kept[1]!.aterm.equals(bytes)).toBe(true);
  });
});
