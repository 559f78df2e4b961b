// Structured attributes (`__json`): the JSON codec against nlohmann's bytes (fixtures printed by
// real Nix 2.8), `.attrs.sh` as Nix writes it and as bash reads it, the attribute readers, the
// outputChecks, and local builds that use them.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builderEnv } from "../../src/builder/builder-env.ts";
import { LocalBuildEffects } from "../../src/builder/local-build-effects.ts";
import { checkOutputs, OutputCheckError } from "../../src/builder/output-checks.ts";
import {
  hashPlaceholder,
  ParsedDerivation,
  rewriteStrings,
  StructuredAttrsError,
  shellEscape,
  structuredAttrsShell,
} from "../../src/builder/structured-attrs.ts";
import {
  dumpJson,
  formatFloat,
  type JsonObject,
  JsonParseError,
  type JsonValue,
  parseJson,
} from "../../src/builder/structured-json.ts";
import type { BasicDerivation } from "../../src/derivation/derivation.ts";
import { Hash } from "../../src/hash/hash.ts";
import { Worker } from "../../src/machines/worker.ts";
import { useTempStores } from "../store/temp-store.ts";
import { makeDrv, outPath } from "./make-drv.ts";

const OUT = "/nix/store/0ib7aplz5s3813rr341j1h2yn69s423i-raw";

/** parse, put `outputs` in as Nix does, dump. */
function withOutputs(text: string): JsonObject {
  const v = parseJson(text) as JsonObject;
  v.set("outputs", new Map([["out", OUT]]));
  return v;
}

describe("the JSON of structured attributes, as nlohmann prints it", () => {
  it("prints numbers as Nix 2.8 does (integers exact, floats in Grisu2 form)", () => {
    // Fixture: `.attrs.json` of a real Nix 2.8 build whose __json was exactly this text.
    const text =
      '{"a":1.0,"b":1e2,"c":0.1,"d":1e-5,"e":123456789012345678901,"f":-0,"g":-0.0,"h":1e21,"i":12345678901234567,"j":2.9999999999,"k":1e-50,"l":1e10,"m":-3.0,"n":18446744073709551615,"o":-9223372036854775808,"p":5e-324,"q":1.7976931348623157e308, "r":0.000123,"s":123456789012345.6,"t":1234567890123456.7}';
    expect(dumpJson(withOutputs(text))).toBe(
      `{"a":1.0,"b":100.0,"c":0.1,"d":1e-05,"e":1.2345678901234568e+20,"f":0,"g":-0.0,"h":1e+21,"i":12345678901234567,"j":2.9999999999,"k":1e-50,"l":10000000000.0,"m":-3.0,"n":18446744073709551615,"o":-9223372036854775808,"outputs":{"out":"${OUT}"},"p":5e-324,"q":1.7976931348623157e+308,"r":0.000123,"s":123456789012345.6,"t":1.2345678901234567e+15}`,
    );
  });

  it("escapes strings and sorts keys by bytes as Nix 2.8 does", () => {
    const text =
      '{"s":"a\\u0001\\b\\f\\n\\r\\t\\u007f\\u0080\\u00e9\\ud83d\\ude00\\"\\\\\\/x\\u2028","e":[],"o":{},"ee":[[]],"é":1,"z":2,"Z":3,"_":4,"a1":5,"1a":6,"":7,"\\ud83d\\ude00":8,"\\uffff":9,"oo":{"\\n":1,"x":null,"y":false},"lf":[1.5],"of":{"a":1.5}}';
    // U+FFFF sorts before U+1F600 in UTF-8 bytes (EF < F0), after it in UTF-16.
    expect(dumpJson(withOutputs(text))).toBe(
      `{"":7,"1a":6,"Z":3,"_":4,"a1":5,"e":[],"ee":[[]],"lf":[1.5],"o":{},"of":{"a":1.5},"oo":{"\\n":1,"x":null,"y":false},"outputs":{"out":"${OUT}"},"s":"a\\u0001\\b\\f\\n\\r\\t\u007f\u0080é😀\\"\\\\/x\u2028","z":2,"é":1,"\uffff":9,"😀":8}`,
    );
  });

  it("formats floats as nlohmann's to_chars (values checked against real Nix 2.8)", () => {
    const cases: [number, string][] = [
      [0, "0.0"],
      [-0, "-0.0"],
      [1, "1.0"],
      [0.1, "0.1"],
      [1e14, "100000000000000.0"],
      [1e15, "1e+15"],
      [1e16, "1e+16"],
      [999999999999999.9, "999999999999999.9"],
      [0.00001234, "1.234e-05"],
      [1e-4, "0.0001"],
      [1e-5, "1e-05"],
      [123.456, "123.456"],
      [-2.5e-300, "-2.5e-300"],
      [Number.MAX_VALUE, "1.7976931348623157e+308"],
      [Number.MIN_VALUE, "5e-324"],
      [Number.POSITIVE_INFINITY, "null"],
    ];
    for (const [x, s] of cases) expect(formatFloat(x), String(x)).toBe(s);
  });

  it("reads what nlohmann reads, rejects what it rejects, with where and why", () => {
    const bad: [string, RegExp][] = [
      ['{"a":1,}', /line 1, column 8: .*unexpected '}'; expected string literal/],
      ['{"a":1}x', /expected end of input/],
      ['{"a":1e400}', /number overflow parsing '1e400'/],
      ['{"a":"\\ud800"}', /surrogate U\+D800\.\.U\+DBFF must be followed by U\+DC00\.\.U\+DFFF/],
      ['{"a":"\\udc00"}', /surrogate U\+DC00\.\.U\+DFFF must follow/],
      ['{"a":"\udc80"}', /ill-formed UTF-8 byte/],
      ['{"a":"x\ny"}', /control character U\+000A must be escaped/],
      ["[01]", /expected ',' or ']'|expected '\]'/],
      ['{\n  "a": tru }', /line 2, column 8: .*invalid literal/],
      ["", /unexpected end of input; expected value/],
      [' \ufeff{"a":1}', /unexpected '\ufeff'; expected value/],
      ["[1, 2", /unexpected end of input/],
    ];
    for (const [text, message] of bad) {
      expect(() => parseJson(text), text).toThrow(JsonParseError);
      expect(() => parseJson(text), text).toThrow(message);
    }
    // nlohmann skips a byte order mark at the start; a repeated key keeps its last value.
    expect(dumpJson(parseJson('\ufeff{"a":1,"a":{"b":2}}'))).toBe('{"a":{"b":2}}');
    expect(parseJson("-0")).toBe(0n);
    expect(parseJson("18446744073709551616")).toBe(2 ** 64); // past uint64: a float
  });

  it("parses and prints any depth of nesting without running out of stack", () => {
    const depth = 200_000;
    const text = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    expect(dumpJson(parseJson(text))).toBe(text);
  });
});

// ---- property: what the writer prints, the reader reads back ----

const stringArb = fc
  .string({ unit: "binary", maxLength: 12 })
  .map((s) => s.replace(/\p{Cs}/gu, "?"));
const scalarArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  stringArb,
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const { value: jsonArb } = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalarArb,
    fc.array(tie("value"), { maxLength: 4 }),
    fc
      .array(fc.tuple(stringArb, tie("value")), { maxLength: 4 })
      .map((entries) => new Map(entries)),
  ),
}));

function same(a: JsonValue, b: JsonValue): boolean {
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]!));
  if (a instanceof Map) {
    return (
      b instanceof Map &&
      a.size === b.size &&
      [...a].every(([k, v]) => b.has(k) && same(v, b.get(k)!))
    );
  }
  return Object.is(a, b);
}

describe("property: dumpJson then parseJson", () => {
  it("gives back the same value (integers stay integers, floats floats, -0.0 stays)", () => {
    fc.assert(
      fc.property(jsonArb, (v) => {
        const text = dumpJson(v);
        const back = parseJson(text);
        expect(same(back, v), text).toBe(true);
        expect(dumpJson(back)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- .attrs.sh ----

describe(".attrs.sh (writeStructuredAttrsShell)", () => {
  it("writes what Nix 2.8 writes", () => {
    // Fixtures: `.attrs.sh` of real Nix 2.8 builds of the same __json as above.
    const numbers = withOutputs(
      '{"a":1.0,"b":1e2,"c":0.1,"d":1e-5,"e":123456789012345678901,"f":-0,"g":-0.0,"h":1e21,"i":12345678901234567,"j":2.9999999999,"k":1e-50,"l":1e10,"m":-3.0,"n":18446744073709551615,"o":-9223372036854775808,"p":5e-324,"q":1.7976931348623157e308, "r":0.000123,"s":123456789012345.6,"t":1234567890123456.7}',
    );
    expect(structuredAttrsShell(numbers)).toBe(
      [
        "declare a=1",
        "declare b=100",
        "declare e=-2147483648",
        "declare f=0",
        "declare g=0",
        "declare h=-2147483648",
        "declare i=1567312775",
        "declare j=2",
        "declare k=0",
        "declare l=-2147483648",
        "declare m=-3",
        "declare n=-1",
        "declare o=0",
        `declare -A outputs=(['out']='${OUT}' )`,
        "declare p=0",
        "declare q=-2147483648",
        "declare s=-2147483648",
        "declare t=-2147483648",
        "",
      ].join("\n"),
    );
    const kinds = withOutputs(
      '{"s":"it\'s \\"q\\" \\n x","e":[],"o":{},"ee":[[]],"é":1,"Z":3,"_":4,"a1":5,"1a":6,"":7,"bad-key":1,"oo":{"\\n":1,"x":null,"y":false},"lf":[1.5],"of":{"a":1.5},"list":[1,"a",true,null],"obj":{"a":1,"b c":"x\'y"}}',
    );
    expect(structuredAttrsShell(kinds)).toBe(
      [
        "declare Z=3",
        "declare _=4",
        "declare a1=5",
        "declare -a e=()",
        "declare -a list=(1 'a' 1 '' )",
        "declare -A o=()",
        "declare -A obj=(['a']=1 ['b c']='x'\\''y' )",
        "declare -A oo=(['\n']=1 ['x']='' ['y']= )",
        `declare -A outputs=(['out']='${OUT}' )`,
        `declare s='it'\\''s "q" \n x'`,
        "",
      ].join("\n"),
    );
  });

  it("shellEscape quotes as Nix does", () => {
    expect(shellEscape("a'b")).toBe("'a'\\''b'");
    expect(shellEscape("")).toBe("''");
  });
});

const shellNameArb = fc.oneof(
  fc.stringMatching(/^x[A-Za-z0-9_]{0,6}$/),
  fc.constantFrom("_a", "Z9", "1a", "a-b", "é", "a b", "", "x.y"),
);
// Bash holds no NUL; an empty associative-array key is an error in bash (and in Nix's file).
const shStringArb = stringArb.map((s) => s.replaceAll("\0", ""));
const shScalarArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  shStringArb,
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.integer({ min: -5000, max: 5000 }).map((n) => n / 4),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const shValueArb: fc.Arbitrary<JsonValue> = fc.oneof(
  shScalarArb,
  fc.array(shScalarArb, { maxLength: 4 }),
  fc
    .array(
      fc.tuple(
        shStringArb.filter((k) => k !== ""),
        shScalarArb,
      ),
      { maxLength: 4 },
    )
    .map((e) => new Map(e)),
  fc.array(fc.array(shScalarArb, { maxLength: 2 }), { minLength: 1, maxLength: 2 }),
);

/** What bash should hold for a scalar, by Nix's rules (undefined: not representable). */
function expectedScalar(v: JsonValue): string | undefined {
  if (typeof v === "string") return v;
  if (v === null) return "";
  if (typeof v === "boolean") return v ? "1" : "";
  if (typeof v === "bigint") return String(Number(BigInt.asIntN(32, v)));
  if (typeof v === "number") {
    const f = Math.fround(v);
    if (Math.ceil(f) !== f) return undefined;
    const t = Math.trunc(v);
    return String(t >= -(2 ** 31) && t < 2 ** 31 ? t : -(2 ** 31));
  }
  return undefined;
}

describe("property: sourcing .attrs.sh in bash", () => {
  const dir = mkdtempSync(join(tmpdir(), "nixstate-attrs-sh-"));
  it("gives each representable attribute its value, and declares no other", () => {
    try {
      fc.assert(
        fc.property(fc.array(fc.tuple(shellNameArb, shValueArb), { maxLength: 6 }), (entries) => {
          const json: JsonObject = new Map(entries);
          const file = join(dir, ".attrs.sh");
          writeFileSync(file, structuredAttrsShell(json));
          const expected: Record<string, string[] | Record<string, string> | string | null> = {};
          let script = `source ${shellEscape(file)} || exit 9\n`;
          for (const [name, v] of json) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
            const s = expectedScalar(v);
            let want: (typeof expected)[string] = null;
            if (s !== undefined) want = s;
            else if (Array.isArray(v)) {
              const items = v.map(expectedScalar);
              // `false` is written unquoted and empty, so bash's word splitting drops it.
              if (items.every((x) => x !== undefined))
                want = items.filter((x, i) => !(x === "" && v[i] === false)) as string[];
            } else if (v instanceof Map) {
              const items = [...v].map(([k, x]) => [k, expectedScalar(x)] as const);
              if (items.every(([, x]) => x !== undefined))
                want = Object.fromEntries(items) as Record<string, string>;
            }
            expected[name] = want;
            // Each variable as NUL-separated fields: kind, then contents.
            script += `if ! declare -p ${name} >/dev/null 2>&1; then printf 'unset\\0'
elif [[ "$(declare -p ${name})" == "declare -A"* ]]; then printf 'assoc\\0'; for k in "\${!${name}[@]}"; do printf '%s\\0%s\\0' "$k" "\${${name}[$k]}"; done
elif [[ "$(declare -p ${name})" == "declare -a"* ]]; then printf 'array\\0'; for e in "\${${name}[@]}"; do printf '%s\\0' "$e"; done
else printf 'scalar\\0%s\\0' "$${name}"; fi; printf 'end\\0'\n`;
          }
          const r = spawnSync("/bin/bash", ["--norc", "--noprofile", "-c", script], {
            encoding: "utf8",
            env: {},
          });
          expect(r.status, r.stderr).toBe(0);
          expect(r.stderr).toBe("");
          const fields = r.stdout.split("\0");
          for (const name of Object.keys(expected)) {
            const kind = fields.shift();
            const body: string[] = [];
            while (fields[0] !== "end") body.push(fields.shift()!);
            fields.shift();
            const want = expected[name];
            if (want === null) expect(kind, name).toBe("unset");
            else if (typeof want === "string")
              expect([kind, body], name).toEqual(["scalar", [want]]);
            else if (Array.isArray(want)) expect([kind, body], name).toEqual(["array", want]);
            else {
              expect(kind, name).toBe("assoc");
              const got: Record<string, string> = {};
              for (let i = 0; i + 1 < body.length; i += 2) got[body[i]!] = body[i + 1]!;
              expect(got, name).toEqual(want);
            }
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- attribute readers ----

function drvWith(env: Record<string, string>, outputs = ["out"]): BasicDerivation {
  return {
    name: "x",
    outputs: new Map(
      outputs.map((o) => [
        o,
        { type: "inputAddressed" as const, path: `/nix/store/${"a".repeat(32)}-x-${o}` },
      ]),
    ),
    inputSrcs: [],
    platform: "x86_64-linux",
    builder: "/bin/sh",
    args: [],
    env: new Map(Object.entries(env)),
  };
}

describe("ParsedDerivation", () => {
  const drvPath = `/nix/store/${"b".repeat(32)}-x.drv`;

  it("reads attributes from __json when there is one, from the env otherwise", () => {
    const structured = new ParsedDerivation(
      drvPath,
      drvWith({
        __json:
          '{"requiredSystemFeatures":["kvm","big"],"preferLocalBuild":true,"impureEnvVars":["A"]}',
        requiredSystemFeatures: "ignored",
      }),
    );
    expect(structured.hasStructuredAttrs).toBe(true);
    expect(structured.requiredSystemFeatures()).toEqual(["kvm", "big"]);
    expect(structured.getBoolAttr("preferLocalBuild")).toBe(true);
    expect(structured.getBoolAttr("allowSubstitutes", true)).toBe(true);
    expect(structured.getStringsAttr("impureEnvVars")).toEqual(["A"]);

    const legacy = new ParsedDerivation(
      drvPath,
      drvWith({ requiredSystemFeatures: " kvm\tbig ", preferLocalBuild: "true" }),
    );
    expect(legacy.hasStructuredAttrs).toBe(false);
    expect(legacy.requiredSystemFeatures()).toEqual(["kvm", "big"]);
    // Without structured attributes only "1" is true.
    expect(legacy.getBoolAttr("preferLocalBuild")).toBe(false);
  });

  it("names the derivation when __json is not JSON or an attribute has the wrong type", () => {
    expect(() => new ParsedDerivation(drvPath, drvWith({ __json: "{" }))).toThrow(
      new RegExp(
        `^cannot process __json attribute of '${"b".repeat(32)}-x\\.drv': parse error at line 1, column 2`,
      ),
    );
    const p = new ParsedDerivation(
      drvPath,
      drvWith({ __json: '{"requiredSystemFeatures":"kvm","preferLocalBuild":1,"name":[]}' }),
    );
    expect(() => p.requiredSystemFeatures()).toThrow(
      `attribute 'requiredSystemFeatures' of derivation '${"b".repeat(32)}-x.drv' must be a list of strings`,
    );
    expect(() => p.getBoolAttr("preferLocalBuild")).toThrow("must be a Boolean");
    expect(() => p.getStringAttr("name")).toThrow("must be a string");
    expect(() => p.getBoolAttr("preferLocalBuild")).toThrow(StructuredAttrsError);
  });

  it("builderEnv passes no derivation env, only the fixed variables (and impureEnvVars from JSON)", () => {
    const drv = drvWith({
      __json: '{"impureEnvVars":["FOO"],"passAsFile":["x"],"x":"y"}',
      out: "/nix/store/x",
      impureEnvVars: "BAR",
      x: "y",
      passAsFile: "x",
    });
    drv.outputs = new Map([
      ["out", { type: "fixed", path: "/nix/store/x", method: "flat", hash: Hash.of("sha256", "") }],
    ]);
    const { env, files } = builderEnv({
      drv,
      drvPath,
      storeDir: "/nix/store",
      buildDir: "/build",
      cores: 3,
      callerEnv: { FOO: "foo", BAR: "bar" },
    });
    expect(files).toEqual([]);
    expect(env).toEqual({
      PATH: "/path-not-set",
      HOME: "/homeless-shelter",
      NIX_STORE: "/nix/store",
      NIX_BUILD_CORES: "3",
      NIX_BUILD_TOP: "/build",
      TMPDIR: "/build",
      TEMPDIR: "/build",
      TMP: "/build",
      TEMP: "/build",
      PWD: "/build",
      NIX_OUTPUT_CHECKED: "1",
      FOO: "foo",
      NIX_LOG_FD: "2",
      TERM: "xterm-256color",
    });
  });

  it("hashPlaceholder is Nix's placeholder, rewriteStrings replaces every occurrence", () => {
    expect(hashPlaceholder("out")).toBe("/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9");
    expect(hashPlaceholder("dev")).toBe("/02qcpld1y6xhs5gz9bchpxaw0xdhmsp5dv88lh25r2ss44kh8dxz");
    expect(
      rewriteStrings(
        "a-b-a",
        new Map([
          ["a", "xa"],
          ["b", "c"],
        ]),
      ),
    ).toBe("xa-c-xa");
  });
});

// ---- outputChecks ----

describe("checkOutputs", () => {
  const dir = "/nix/store";
  const out = `${dir}/${"o".repeat(32)}-x`;
  const dev = `${dir}/${"d".repeat(32)}-x-dev`;
  const dep = `${dir}/${"p".repeat(32)}-dep`;
  const outputs = [
    { name: "out", path: out, references: [dep, dev, out], narSize: 300 },
    { name: "dev", path: dev, references: [], narSize: 100 },
  ];
  const isStorePath = (s: string) =>
    s.startsWith(`${dir}/`) && !s.slice(dir.length + 1).includes("/");
  const info = (p: string) => {
    if (p === dep) return { references: [], narSize: 50 };
    throw new Error(`not valid: ${p}`);
  };
  const run = (json: unknown, env: Record<string, string> = {}) =>
    checkOutputs(
      new ParsedDerivation(
        "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-x.drv",
        drvWith(json === undefined ? env : { __json: JSON.stringify(json) }, ["out", "dev"]),
      ),
      outputs,
      isStorePath,
      info,
    );

  it("applies maxSize and maxClosureSize with Nix 2.8's messages", () => {
    expect(() => run({ outputChecks: { out: { maxSize: 299 } } })).toThrow(
      new OutputCheckError(`path '${out}' is too large at 300 bytes; limit is 299 bytes`),
    );
    expect(() => run({ outputChecks: { out: { maxSize: 300, maxClosureSize: 449 } } })).toThrow(
      `closure of path '${out}' is too large at 450 bytes; limit is 449 bytes`,
    );
    expect(() =>
      run({ outputChecks: { out: { maxClosureSize: 450 }, dev: { maxSize: -1 } } }),
    ).not.toThrow();
    expect(() => run({ outputChecks: { out: { maxSize: "big" } } })).toThrow(
      /type must be number, but is string \(at 'outputChecks\.out\.maxSize'/,
    );
  });

  it("lets an output require itself only without structured attributes", () => {
    expect(() => run(undefined, { allowedRequisites: `${dep} dev` })).not.toThrow();
    expect(() => run({ outputChecks: { out: { allowedRequisites: [dep, "dev"] } } })).toThrow(
      `output '${out}' is not allowed to refer to the following paths:\n  ${out}`,
    );
    expect(() =>
      run({ outputChecks: { out: { allowedRequisites: [dep, "dev", "out"] } } }),
    ).not.toThrow();
  });

  it("reads the lists as Nix iterates them: a string is one, null none; others must be strings", () => {
    expect(() => run({ outputChecks: { out: { allowedReferences: "dev" } } })).toThrow(
      `output '${out}' is not allowed to refer to the following paths:\n  ${out}\n  ${dep}`,
    );
    expect(() => run({ outputChecks: { dev: { allowedReferences: null } } })).not.toThrow();
    expect(() => run({ outputChecks: { out: { disallowedReferences: null } } })).not.toThrow();
    expect(() => run({ outputChecks: { out: { disallowedRequisites: ["dev"] } } })).toThrow(
      `\n  ${dev}`,
    );
    expect(() => run({ outputChecks: { out: { allowedReferences: [1] } } })).toThrow(
      "attribute 'allowedReferences' of derivation '/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-x.drv' must be a list of strings",
    );
    expect(() => run({ outputChecks: { out: { allowedReferences: ["nope"] } } })).toThrow(
      "derivation contains an illegal reference specifier 'nope'",
    );
    // Structured attributes ignore the env's lists, and checks of other shapes are no checks.
    expect(() => run({ allowedReferences: [], outputChecks: [] })).not.toThrow();
  });
});

// ---- local builds ----

const stores = useTempStores();

function setup() {
  const store = stores.open();
  const effects = new LocalBuildEffects(store, { system: "x86_64-linux", cores: 1 });
  const worker = new Worker(effects, { maxJobs: 1, useSubstitutes: false });
  return { store, worker };
}

/** A builder that sees only .attrs.sh: it copies both files and its env into the out output. */
const COPY_ATTRS = `exec /bin/bash -c '
set -eu
source "$NIX_ATTRS_SH_FILE"
o=\${outputs[out]}
/bin/mkdir "$o"
/bin/cp "$NIX_ATTRS_JSON_FILE" "$NIX_ATTRS_SH_FILE" "$o/"
/usr/bin/env > "$o/env"
/bin/ls -A "$NIX_BUILD_TOP" > "$o/files"
'`;

describe("local builds with structured attributes", () => {
  it("pass the attributes in .attrs.json/.attrs.sh only, with outputs and exportReferencesGraph", async () => {
    const { store, worker } = setup();
    const dep = makeDrv(store, { name: "dep", script: "echo hi > $out" });
    const depOut = outPath(dep.drv);
    const json = {
      name: "s",
      passAsFile: ["big"],
      big: "text",
      exportReferencesGraph: { graph: [depOut] },
    };
    const d = makeDrv(store, {
      name: "s",
      deps: [dep.drvPath],
      env: { __json: JSON.stringify(json), big: "text", passAsFile: "big" },
      script: COPY_ATTRS,
    });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status, r!.errorMsg).toBe("Built");
    const out = store.toRealPath(outPath(d.drv));
    const env = readFileSync(join(out, "env"), "utf8");
    // No binding of the derivation's env, not even `out`; passAsFile is ignored.
    expect(env).not.toMatch(/^(out|name|big|bigPath|__json)=/m);
    const top = /^NIX_BUILD_TOP=(.*)$/m.exec(env)![1]!;
    expect(env).toContain(`\nNIX_ATTRS_JSON_FILE=${top}/.attrs.json\n`);
    expect(env).toContain(`\nNIX_ATTRS_SH_FILE=${top}/.attrs.sh\n`);
    expect(readFileSync(join(out, "files"), "utf8")).toBe(".attrs.json\n.attrs.sh\n");
    const info = store.queryPathInfo(depOut);
    expect(readFileSync(join(out, ".attrs.json"), "utf8")).toBe(
      `{"big":"text","exportReferencesGraph":{"graph":["${depOut}"]},"graph":[{"closureSize":${info.narSize},"narHash":"${info.narHash.format("nix32")}","narSize":${info.narSize},"path":"${depOut}","references":[]}],"name":"s","outputs":{"out":"${outPath(d.drv)}"},"passAsFile":["big"]}`,
    );
    expect(readFileSync(join(out, ".attrs.sh"), "utf8")).toBe(
      `declare big='text'\ndeclare name='s'\ndeclare -A outputs=(['out']='${outPath(d.drv)}' )\ndeclare -a passAsFile=('big' )\n`,
    );
  });

  it("enforce outputChecks (OutputRejected, exit 1 as Nix 2.8)", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, {
      name: "big",
      env: { __json: '{"outputChecks":{"out":{"maxSize":16}}}' },
      script: COPY_ATTRS,
    });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("OutputRejected");
    expect(r!.errorMsg).toMatch(
      new RegExp(`^path '${outPath(d.drv)}' is too large at \\d+ bytes; limit is 16 bytes$`),
    );
    expect(worker.exitStatus()).toBe(1);
    expect(store.isValidPath(outPath(d.drv))).toBe(false);
  });

  it("fail a malformed __json with an error naming the derivation (exit 1 as Nix 2.8)", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, { name: "broken", env: { __json: '{"a":' }, script: COPY_ATTRS });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toMatch(
      new RegExp(
        `^cannot process __json attribute of '${d.drvPath.slice(d.drvPath.lastIndexOf("/") + 1)}': parse error at line 1, column 6`,
      ),
    );
    expect(worker.exitStatus()).toBe(1);
    expect(store.isValidPath(outPath(d.drv))).toBe(false);
  });

  it("read requiredSystemFeatures from the structured attributes", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, {
      name: "feat",
      env: { __json: '{"requiredSystemFeatures":["no-such-feature"]}' },
      script: COPY_ATTRS,
    });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toMatch(/with features \{no-such-feature\} is required/);
  });
});
