// Structured attributes against real Nix 2.8: the same .drv files built by `nix-store --realise`
// and by `nixstate build` (same store directory, each with its own database) must end with the
// same exit status and, for the builds that succeed, byte-identical outputs. The builders copy
// what they were given into $out: .attrs.json, .attrs.sh, the list of files in the build directory
// and their whole environment (the build directory's path replaced by a fixed word), so every
// byte of the JSON and shell printers and every variable is compared.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore } from "../../src/store/local-store.ts";
import { NixDbReader } from "../../src/store/nix-db-reader.ts";
import { runCli } from "../cli/run-cli.ts";
import { nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile } from "./real-nix.ts";

// `__json` written as text, for what the evaluator never writes (floats it would round, keys it
// would not repeat…); @DEP@ becomes the dependency's path.
const RAW_JSON = String.raw`{"floats":[1.0,0.1,1e-5,1e21,1e15,1e14,-0.0,5e-324,1.7976931348623157e308,2.9999999999,123456789012345.6,0.5,-3.0],
"ints":[0,-0,42,-7,3000000000,18446744073709551615,-9223372036854775808,12345678901234567890123],
"str":"it's \"quoted\" \\ back\/slash\n\t\u0001\u001f\u007f é 😀 \ud83d\ude00",
"é":1,"\uffff":2,"😀":3,"Z":0,"_x":0,"1a":1,"a-b":1,"":0,
"b":[true,false,null],"o":{"k":1,"b c":"x'y","n":null,"f":false},"nested":[[1]],"half":0.5,"big":1e10,
"dep":"@DEP@","exportReferencesGraph":{"g":"@DEP@","h":["@DEP@","@DEP@"],"none":null},
"outputs":"replaced","passAsFile":["str"],"dup":1,"dup":2}`;

const rawJsonExpr = RAW_JSON.split("@DEP@")
  .map((part) => nixString(part))
  .join(" + dep + ");

const EXPR = `
let
  system = builtins.currentSystem;
  dep = derivation {
    name = "sa-dep"; inherit system; builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ];
  };
  # What the builder was given, into the out output; other outputs get their name.
  copy = ''
    set -eu
    source "$NIX_ATTRS_SH_FILE"
    o=''\${outputs[out]}
    /bin/mkdir "$o"
    /bin/cp "$NIX_ATTRS_JSON_FILE" "$NIX_ATTRS_SH_FILE" "$o/"
    /usr/bin/env | /usr/bin/sort | /bin/sed "s|$NIX_BUILD_TOP|BUILD_TOP|g" > "$o/env"
    /bin/ls -A "$NIX_BUILD_TOP" > "$o/files"
    for x in "''\${!outputs[@]}"; do [ "$x" = out ] || echo "$x" > "''\${outputs[$x]}"; done
  '';
  structured = name: attrs: derivation ({
    inherit name system; builder = "/bin/bash"; args = [ "-c" copy ];
    __structuredAttrs = true;
  } // attrs);
in {
  typed = structured "sa-typed" {
    outputs = [ "out" "dev" ];
    str = "it's \\"q\\" \\n x \\t é";
    int = 42; neg = -7; big = 3000000000; flt = 1.5; t = true; f = false; n = null;
    list = [ 1 "a" true null ]; nested = [ [ 1 ] ]; obj = { a = 1; "b c" = "x'y"; };
    "bad-key" = 1;
    passAsFile = [ "str" ];
    exportReferencesGraph = { graph = [ dep ]; one = dep; };
    inherit dep;
    requiredSystemFeatures = [ ];
    preferLocalBuild = true;
    outputChecks.out = { allowedRequisites = [ "out" "dev" dep ]; maxSize = 100000; maxClosureSize = 100000; };
    outputChecks.dev.allowedReferences = [ ];
  };
  raw = derivation {
    name = "sa-raw"; inherit system; builder = "/bin/bash"; args = [ "-c" copy ];
    __json = ${rawJsonExpr};
  };
  tooBig = structured "sa-too-big" { outputChecks.out.maxSize = 10; };
  # .attrs.json names the output itself: with structured attributes that is a requisite too.
  selfRequisite = structured "sa-self" { inherit dep; outputChecks.out.allowedRequisites = [ dep ]; };
  disallowed = structured "sa-disallowed" { inherit dep; outputChecks.out.disallowedReferences = [ dep ]; };
  wrongType = structured "sa-wrong-type" { requiredSystemFeatures = "kvm"; };
  badJson = derivation {
    name = "sa-bad-json"; inherit system; builder = "/bin/bash"; args = [ "-c" copy ];
    __json = "{\\"a\\":";
  };
}
`;

const NAMES = [
  "typed",
  "raw",
  "tooBig",
  "selfRequisite",
  "disallowed",
  "wrongType",
  "badJson",
] as const;
type Name = (typeof NAMES)[number];

interface Outcome {
  status: number | null;
  stderr: string;
  /** Output path → NAR hash (base16) and the files of the out output. */
  outputs: Record<string, { narHash: string | undefined; files: Record<string, string> }>;
}

function filesOf(path: string): Record<string, string> {
  try {
    return Object.fromEntries(
      readdirSync(path)
        .sort()
        .map((f) => [f, readFileSync(join(path, f), "utf8")]),
    );
  } catch {
    return {};
  }
}

describe.runIf(haveRealNix())("structured attributes against real Nix 2.8", () => {
  let nix: NixEnv;
  const drvs = {} as Record<Name, string>;
  const outputsOf = {} as Record<Name, string[]>;
  const theirs = {} as Record<Name, Outcome>;
  const mine = {} as Record<Name, Outcome>;

  beforeAll(() => {
    nix = makeNixEnv();
    const file = nix.writeExpr("structured.nix", EXPR);
    for (const name of NAMES) {
      drvs[name] = nix.run("nix-instantiate", [file, "-A", name]).trim();
      outputsOf[name] = nix
        .run("nix-store", ["--query", "--outputs", drvs[name]])
        .trim()
        .split("\n");
    }
    // Real Nix first; what it built is read before nixstate builds over it.
    for (const name of NAMES) {
      const r = spawnSync("nix-store", ["--realise", "--cores", "1", drvs[name]], {
        env: nix.env,
        encoding: "utf8",
      });
      const db = NixDbReader.open(nixDbFile(nix));
      theirs[name] = {
        status: r.status,
        stderr: r.stderr,
        outputs: Object.fromEntries(
          outputsOf[name].map((p) => [
            p,
            { narHash: db.queryPathInfo(p)?.narHash.toBase16(), files: filesOf(p) },
          ]),
        ),
      };
      db.close();
    }
    // Then nixstate on the same .drv files and store directory, with its own database.
    const stateDir = join(nix.root, "nixstate");
    for (const name of NAMES) {
      const r = runCli([
        "build",
        "--store-dir",
        nix.storeDir,
        "--state-dir",
        stateDir,
        "--cores",
        "1",
        drvs[name],
      ]);
      const store = LocalStore.open({ stateDir, storeDir: nix.storeDir });
      mine[name] = {
        status: r.status,
        stderr: r.stderr,
        outputs: Object.fromEntries(
          outputsOf[name].map((p) => [
            p,
            { narHash: store.tryQueryPathInfo(p)?.narHash.toBase16(), files: filesOf(p) },
          ]),
        ),
      };
      store.close();
    }
  }, 120_000);
  afterAll(() => nix?.cleanup());

  it("gives builders the same .attrs.json, .attrs.sh and environment as Nix: identical outputs", () => {
    for (const name of ["typed", "raw"] as const) {
      expect(theirs[name].status, theirs[name].stderr).toBe(0);
      expect(mine[name].status, mine[name].stderr).toBe(0);
      const out = outputsOf[name].find((p) => !p.endsWith("-dev"))!;
      // File by file first, for a readable difference; then the NAR hashes of every output.
      expect(mine[name].outputs[out]!.files).toEqual(theirs[name].outputs[out]!.files);
      expect(mine[name].outputs).toEqual(theirs[name].outputs);
      expect(theirs[name].outputs[out]!.narHash).toMatch(/^[0-9a-f]{64}$/);
    }
    // What these builds saw, in short: no derivation env, Nix 2.8's NIX_ATTRS_* variables.
    const typedOut = outputsOf.typed.find((p) => !p.endsWith("-dev"))!;
    const seen = mine.typed.outputs[typedOut]!.files;
    expect(seen.env).toContain("NIX_ATTRS_JSON_FILE=BUILD_TOP/.attrs.json\n");
    expect(seen.env).toContain("NIX_ATTRS_SH_FILE=BUILD_TOP/.attrs.sh\n");
    expect(seen.env).not.toMatch(/^(out|dev|str|strPath|__json)=/m);
    expect(seen.files).toBe(".attrs.json\n.attrs.sh\n");
  });

  it("fails outputChecks, a malformed __json and a wrongly typed attribute as Nix does", () => {
    const expected: Record<Exclude<Name, "typed" | "raw">, RegExp> = {
      tooBig: /is too large at \d+ bytes; limit is 10 bytes/,
      selfRequisite: /is not allowed to refer to the following paths:\s+\S+-sa-self\n/,
      disallowed: /is not allowed to refer to the following paths:\s+\S+-sa-dep\n/,
      wrongType:
        /attribute 'requiredSystemFeatures' of derivation '\w{32}-sa-wrong-type\.drv' must be a list of strings/,
      badJson: /cannot process __json attribute of '\w{32}-sa-bad-json\.drv'/,
    };
    for (const [name, message] of Object.entries(expected) as [Name, RegExp][]) {
      expect(theirs[name].stderr, name).toMatch(message);
      expect(mine[name].stderr, name).toMatch(message);
      expect(mine[name].status, `${name}: ${mine[name].stderr}`).toBe(theirs[name].status);
      expect(theirs[name].status, name).toBe(1);
      for (const p of outputsOf[name]) expect(mine[name].outputs[p]!.narHash, p).toBeUndefined();
    }
  });
});
