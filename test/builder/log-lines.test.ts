import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { LogLineSink, LogLineSplitter } from "../../src/builder/log-lines.ts";

function split(...chunks: (string | Buffer)[]): string[] {
  const s = new LogLineSplitter();
  const lines = chunks.flatMap((c) => s.push(typeof c === "string" ? Buffer.from(c) : c));
  return [...lines, ...s.end()];
}

describe("builder output cut into lines as Nix 2.8 cuts it", () => {
  it("ends lines at \\n, keeps empty ones, and counts an unfinished last line at the end", () => {
    expect(split("line one\n\nlast")).toEqual(["line one", "", "last"]);
    expect(split("a\n")).toEqual(["a"]);
    expect(split("")).toEqual([]);
  });

  it("rewrites a line after \\r, as a terminal would (Nix: 'abc\\rX' is 'Xbc')", () => {
    expect(split("abc\rX\n")).toEqual(["Xbc"]);
    expect(split("a\r\n")).toEqual(["a"]);
    expect(split("10%\r20%\r100%\n")).toEqual(["100%"]);
    expect(split("abc\r")).toEqual(["abc"]);
  });

  it("decodes a character split between two chunks whole", () => {
    const bytes = Buffer.from("é€\n");
    expect(split(bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3))).toEqual(["é€"]);
    expect(split(Buffer.from([0xff, 0x0a]))).toEqual(["\ufffd"]);
  });

  test.prop([fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 })])(
    "gives the same lines however the output is cut into chunks",
    (bytes, cuts) => {
      const at = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let from = 0;
      for (const c of [...at, bytes.length]) {
        chunks.push(Buffer.from(bytes.subarray(from, c)));
        from = c;
      }
      expect(split(...chunks)).toEqual(split(Buffer.from(bytes)));
    },
  );

  it("hands lines on in batches, none empty, the last at the end", () => {
    const batches: string[][] = [];
    const sink = new LogLineSink((lines) => batches.push(lines));
    sink.push(Buffer.from("a\nb"));
    sink.push(Buffer.from("c"));
    sink.push(Buffer.from("\nd\ne\n"));
    sink.push(Buffer.from("tail"));
    sink.end();
    expect(batches).toEqual([["a"], ["bc", "d", "e"], ["tail"]]);
  });
});
