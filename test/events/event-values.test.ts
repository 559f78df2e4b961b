// Effect inputs are logged as their key facts; replay computes the same facts from what the
// machine passes, so the facts of a value and of its JSON round trip must be equal.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { inputFacts } from "../../src/events/event-values.ts";

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
