// The parser core against hand-built archives: every rule of formats.md §6.2, the visitor
// protocol, limits, truncation at every offset, and stopping exactly after the root node.

import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { encodeU64 } from "../../src/io/byte-writer.ts";
import { NarError, type NarErrorCode } from "../../src/nar/nar-error.ts";
import { type NarLimits, type NarVisitor, parseNar } from "../../src/nar/nar-parse.ts";
import { inChunks, oneByteAtATime } from "../io/chunked-source.ts";
import {
  directory,
  type NarToken,
  nar,
  narBytes,
  regular,
  symlink,
  u64,
} from "./hand-built-nar.ts";
import { RICH_NAR } from "./sample-nars.ts";

async function refusal(bytes: Buffer, limits?: NarLimits): Promise<NarError> {
  const error = await parseNar(ByteReader.from(bytes), {}, limits).catch((e: unknown) => e);
  if (!(error instanceof NarError)) throw new Error(`expected a NarError, got ${String(error)}`);
  return error;
}

async function expectRefused(
  bytes: Buffer,
  code: NarErrorCode,
  message: RegExp,
  limits?: NarLimits,
): Promise<NarError> {
  const error = await refusal(bytes, limits);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
  return error;
}

describe("parseNar", () => {
  it("reports nodes to the visitor in archive order", async () => {
    const events: string[] = [];
    const visitor: NarVisitor = {
      directory: (n) => void events.push(`dir ${n.depth} ${n.name ?? "<root>"}`),
      directoryEnd: (n) => void events.push(`end ${n.depth} ${n.name ?? "<root>"}`),
      symlink: (n) => void events.push(`link ${n.depth} ${n.name} -> ${n.target}`),
      async regular(n, contents) {
        let text = "";
        for await (const chunk of contents) text += chunk.toString();
        events.push(`file ${n.depth} ${n.name} x=${n.executable} ${n.size} ${text.slice(0, 5)}`);
      },
    };
    const size = await parseNar(ByteReader.from(RICH_NAR), visitor);
    expect(size).toBe(RICH_NAR.length);
    expect(events).toEqual([
      "dir 0 <root>",
      "file 1 .keep x=false 0 ",
      "file 1 big x=false 3000 aaaaa",
      "dir 1 bin",
      "file 2 hi x=true 18 #!/bi",
      "end 1 bin",
      "dir 1 empty-dir",
      "end 1 empty-dir",
      "link 1 link -> ../target",
      "dir 1 z",
      "dir 2 deeper",
      "file 3 leaf x=false 1 x",
      "end 2 deeper",
      "end 1 z",
      "end 0 <root>",
    ]);
  });

  it("reports narOffset as the position of the contents", async () => {
    const offsets: [number, number][] = [];
    await parseNar(ByteReader.from(RICH_NAR), {
      regular: (n) => void offsets.push([n.narOffset, n.size]),
    });
    expect(RICH_NAR.subarray(offsets[2]![0], offsets[2]![0] + 18).toString()).toBe(
      "#!/bin/sh\necho hi\n",
    );
    expect(RICH_NAR.readUInt32LE(offsets[1]![0] - 8)).toBe(3000);
  });

  it("skips contents the visitor does not read, or reads only partly", async () => {
    const sizes: number[] = [];
    await parseNar(new ByteReader(inChunks(RICH_NAR, [100])), {
      async regular(n, contents) {
        for await (const chunk of contents) {
          sizes.push(chunk.length);
          break;
        }
        void n;
      },
    });
    expect(sizes.length).toBe(3); // .keep is empty: no chunk
    expect(await parseNar(new ByteReader(inChunks(RICH_NAR, [7])))).toBe(RICH_NAR.length);
  });

  it("lets visitor errors through unchanged", async () => {
    const boom = new Error("visitor failed");
    await expect(
      parseNar(ByteReader.from(RICH_NAR), {
        symlink() {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });

  it("stops exactly after the root node, whatever the chunking", async () => {
    const after = Buffer.from("trailing bytes for the next reader");
    const whole = Buffer.concat([RICH_NAR, after]);
    for (const sizes of [[1], [5], [64], [whole.length], [3, 1000, 2]]) {
      const reader = new ByteReader(inChunks(whole, sizes));
      expect(await parseNar(reader)).toBe(RICH_NAR.length);
      expect(reader.offset).toBe(RICH_NAR.length);
      expect((await reader.readExact(after.length)).equals(after)).toBe(true);
      expect(await reader.atEnd()).toBe(true);
    }
  });

  it("reports offsets relative to the NAR's first byte when it sits inside a larger stream", async () => {
    const bad = nar(directory([["..", regular("x")]]));
    const reader = ByteReader.from(Buffer.concat([encodeU64(1), bad]));
    await reader.readU64();
    const error = (await parseNar(reader).catch((e: unknown) => e)) as NarError;
    expect(error).toBeInstanceOf(NarError);
    expect(error.code).toBe("invalid-name");
    // magic 24, "(" 16, "type" 16, "directory" 24, "entry" 16, "(" 16, "name" 16
    expect(error.offset).toBe(128);
    expect(error.message).toMatch(/^invalid NAR at byte 128: invalid file name '\.\.'$/);
  });

  describe("refuses", () => {
    const cases: [string, NarToken[] | Buffer, NarErrorCode, RegExp][] = [
      ["a wrong magic", narBytes(["nix-archive-2", ...regular("x")]), "bad-magic", /not a NAR/],
      [
        "a huge first string",
        narBytes([u64(2 ** 40)]),
        "bad-magic",
        /got a string of 1099511627776 bytes/,
      ],
      ["an empty input", Buffer.alloc(0), "truncated", /truncated/],
      [
        "a missing '('",
        narBytes(["nix-archive-1", "type", "regular"]),
        "unexpected-tag",
        /expected '\(' opening a node, got 'type'/,
      ],
      ["a missing 'type'", ["(", "typo"], "unexpected-tag", /expected 'type', got 'typo'/],
      [
        "an unknown node type",
        ["(", "type", "fifo", ")"],
        "unexpected-tag",
        /unknown node type 'fifo'/,
      ],
      [
        "a second 'type'",
        ["(", "type", "regular", "type", "symlink"],
        "unexpected-tag",
        /expected 'executable' or 'contents', got 'type'/,
      ],
      [
        "a regular file without 'contents'",
        ["(", "type", "regular", ")"],
        "unexpected-tag",
        /expected 'executable' or 'contents', got '\)'/,
      ],
      [
        "a non-empty executable marker",
        ["(", "type", "regular", "executable", "yes", "contents", "", ")"],
        "unexpected-tag",
        /executable marker has a non-empty value/,
      ],
      [
        "'executable' twice",
        ["(", "type", "regular", "executable", "", "executable", "", ")"],
        "unexpected-tag",
        /expected 'contents', got 'executable'/,
      ],
      [
        "'executable' after 'contents'",
        ["(", "type", "regular", "contents", "x", "executable", "", ")"],
        "unexpected-tag",
        /'executable' after 'contents'/,
      ],
      [
        "a second 'contents'",
        ["(", "type", "regular", "contents", "x", "contents", "y", ")"],
        "unexpected-tag",
        /expected '\)' closing the file, got 'contents'/,
      ],
      [
        "a symlink without 'target'",
        ["(", "type", "symlink", "contents", "x", ")"],
        "unexpected-tag",
        /expected 'target', got 'contents'/,
      ],
      [
        "an empty symlink target",
        symlink(""),
        "invalid-symlink-target",
        /invalid symlink target ''/,
      ],
      [
        "a NUL in a symlink target",
        symlink("a\0b"),
        "invalid-symlink-target",
        /invalid symlink target 'a\\x00b'/,
      ],
      [
        "extra fields in a symlink",
        ["(", "type", "symlink", "target", "t", "target", "u", ")"],
        "unexpected-tag",
        /expected '\)' closing the symlink, got 'target'/,
      ],
      ["an empty name", directory([["", regular("x")]]), "invalid-name", /invalid file name ''/],
      ["the name '.'", directory([[".", regular("x")]]), "invalid-name", /invalid file name '\.'/],
      [
        "the name '..'",
        directory([["..", regular("x")]]),
        "invalid-name",
        /invalid file name '\.\.'/,
      ],
      [
        "a name with '/'",
        directory([["a/b", regular("x")]]),
        "invalid-name",
        /invalid file name 'a\/b'/,
      ],
      [
        "a name that is '/'",
        directory([["/", regular("x")]]),
        "invalid-name",
        /invalid file name '\/'/,
      ],
      [
        "a name with NUL",
        directory([["a\0", regular("x")]]),
        "invalid-name",
        /invalid file name 'a\\x00'/,
      ],
      [
        "duplicate names",
        directory([
          ["a", regular("x")],
          ["a", regular("y")],
        ]),
        "duplicate-entry",
        /duplicate entry name 'a'/,
      ],
      [
        "unsorted names",
        directory([
          ["b", regular("x")],
          ["a", regular("y")],
        ]),
        "unsorted-entries",
        /'a' comes after 'b'/,
      ],
      [
        "locale order instead of byte order",
        directory([
          ["a", regular("x")],
          ["B", regular("y")],
        ]),
        "unsorted-entries",
        /'B' comes after 'a'/,
      ],
      [
        "'node' before 'name'",
        ["(", "type", "directory", "entry", "(", "node", ...regular("x"), "name", "a", ")", ")"],
        "unexpected-tag",
        /'node' before 'name'/,
      ],
      [
        "an entry without '('",
        ["(", "type", "directory", "entry", "name", "a"],
        "unexpected-tag",
        /expected '\(' opening the directory entry, got 'name'/,
      ],
      [
        "an entry without 'node'",
        ["(", "type", "directory", "entry", "(", "name", "a", ...regular("x"), ")", ")"],
        "unexpected-tag",
        /expected 'node', got '\('/,
      ],
      [
        "an entry not closed",
        ["(", "type", "directory", "entry", "(", "name", "a", "node", ...regular("x"), "entry"],
        "unexpected-tag",
        /expected '\)' closing the directory entry, got 'entry'/,
      ],
      [
        "something else than 'entry' in a directory",
        ["(", "type", "directory", "name", "a", ")"],
        "unexpected-tag",
        /expected 'entry' or '\)', got 'name'/,
      ],
      [
        "a huge tag",
        ["(", "type", u64(2 ** 50)],
        "unexpected-tag",
        /expected a node type, got a string of 1125899906842624 bytes/,
      ],
      [
        "a huge name",
        ["(", "type", "directory", "entry", "(", "name", u64(2 ** 50)],
        "too-large",
        /length of entry name is 1125899906842624, more than the limit of 4096/,
      ],
      [
        "a huge symlink target",
        ["(", "type", "symlink", "target", u64(2 ** 40)],
        "too-large",
        /length of symlink target is/,
      ],
      [
        "a file size above 2^53",
        ["(", "type", "regular", "contents", { raw: Buffer.alloc(8, 0xff) }],
        "too-large",
        /file size is 18446744073709551615/,
      ],
      [
        "a file size beyond the input",
        ["(", "type", "regular", "contents", u64(2 ** 50), { raw: Buffer.from("x") }],
        "truncated",
        /input ends at byte \d+, 1125899906842623 bytes short of the file contents/,
      ],
      [
        "non-zero padding in a tag",
        [{ raw: encodeU64(1) }, { raw: Buffer.from("(\0\0\0\0\0\0\x01") }],
        "bad-padding",
        /non-zero padding/,
      ],
      [
        "non-zero padding after contents",
        ["(", "type", "regular", "contents", u64(3), { raw: Buffer.from("abc\0\0\0\0\x01") }, ")"],
        "bad-padding",
        /non-zero padding after file contents/,
      ],
      [
        "non-zero padding after a name",
        [
          "(",
          "type",
          "directory",
          "entry",
          "(",
          "name",
          u64(1),
          { raw: Buffer.from("a\x01\0\0\0\0\0\0") },
        ],
        "bad-padding",
        /non-zero padding after entry name/,
      ],
      [
        "a truncated directory",
        ["(", "type", "directory", "entry", "(", "name", "a", "node", ...regular("x"), ")"],
        "truncated",
        /truncated/,
      ],
    ];
    for (const [what, tokens, code, message] of cases) {
      it(what, async () => {
        const bytes = Buffer.isBuffer(tokens) ? tokens : nar(tokens);
        await expectRefused(bytes, code, message);
        // The same refusal when every read crosses chunk boundaries.
        const error = await parseNar(new ByteReader(oneByteAtATime(bytes))).catch(
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(NarError);
        expect((error as NarError).code).toBe(code);
      });
    }
  });

  it("applies configurable limits", async () => {
    const deep = (levels: number): NarToken[] =>
      levels === 0 ? regular("x") : directory([["d", deep(levels - 1)]]);
    expect(await parseNar(ByteReader.from(nar(deep(5))), {}, { maxDepth: 5 })).toBeGreaterThan(0);
    await expectRefused(nar(deep(6)), "too-deep", /nested more than 5 levels/, { maxDepth: 5 });
    await expectRefused(nar(directory([["abcd", regular("")]])), "too-large", /entry name/, {
      maxNameLength: 3,
    });
    await expectRefused(nar(symlink("abcd")), "too-large", /symlink target/, {
      maxTargetLength: 3,
    });
    await expectRefused(nar(regular("abcd")), "too-large", /file size is 4/, { maxFileSize: 3 });
  });

  it("handles deep nesting without recursion", async () => {
    const levels = 2000;
    const parts: NarToken[] = ["nix-archive-1"];
    for (let i = 0; i < levels; i++)
      parts.push("(", "type", "directory", "entry", "(", "name", "d", "node");
    parts.push(...regular("leaf"));
    for (let i = 0; i < levels; i++) parts.push(")", ")");
    const bytes = narBytes(parts);
    let deepest = 0;
    await parseNar(ByteReader.from(bytes), {
      regular: (n) => {
        deepest = n.depth;
      },
    });
    expect(deepest).toBe(levels);
  });

  it("refuses every truncation of a valid NAR with 'truncated', never another error", async () => {
    for (let cut = 0; cut < RICH_NAR.length; cut++) {
      const error = await refusal(RICH_NAR.subarray(0, cut));
      expect(error.code, `cut at ${cut}`).toBe("truncated");
      expect(error.offset).toBeLessThanOrEqual(cut);
    }
  });

  it("refuses truncations the same when fed byte by byte", async () => {
    for (let cut = 0; cut < RICH_NAR.length; cut += 13) {
      const error = await parseNar(new ByteReader(oneByteAtATime(RICH_NAR.subarray(0, cut)))).catch(
        (e: unknown) => e,
      );
      expect((error as NarError).code, `cut at ${cut}`).toBe("truncated");
    }
  });
});
