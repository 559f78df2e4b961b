// A BasicDerivation as BuildDerivation sends it (serve-protocol.md §5.2): outputs (name, path,
// hashAlgo, hash — the four strings of the ATerm tuple), inputSrcs, platform, builder, args,
// env. The name is not sent: it comes from the drvPath in front of it.

import {
  type BasicDerivation,
  type DerivationOutput,
  printMethodAlgo,
  sortBytewise,
} from "../../derivation/derivation.ts";
import { derivationNameFromFile } from "../../derivation/drv-file.ts";
import { Hash, HashParseError, isHashAlgo } from "../../hash/hash.ts";
import type { FileIngestionMethod } from "../../store-path/make-store-path.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";

/** Read the derivation that follows `drvPath` (a checked `.drv` store path) in BuildDerivation. */
export async function readBasicDerivation(
  d: WireDecoder,
  drvPath: string,
): Promise<BasicDerivation> {
  const outputs = new Map<string, DerivationOutput>();
  const nOutputs = await d.count("outputs");
  for (let i = 0; i < nOutputs; i++) {
    const at = d.offset;
    const name = await d.token("output name");
    if (outputs.has(name)) {
      throw d.fail("invalid", "output name", at, `output '${name}' appears twice`);
    }
    outputs.set(name, await readOutput(d, name));
  }
  const inputSrcs = await d.storePathSet("inputSrcs");
  const platform = await d.token("platform");
  const builder = await d.string("builder");
  const args = await d.stringList("args");
  const env = new Map<string, string>();
  const nEnv = await d.count("env");
  for (let i = 0; i < nEnv; i++) {
    const at = d.offset;
    const key = await d.token("env variable name");
    if (env.has(key)) {
      throw d.fail("invalid", "env variable name", at, `variable '${key}' appears twice`);
    }
    env.set(key, await d.string(`value of env variable '${key}'`));
  }
  const name = derivationNameFromFile(drvPath);
  return { name, outputs, inputSrcs, platform, builder, args, env };
}

async function readOutput(d: WireDecoder, name: string): Promise<DerivationOutput> {
  const pathAt = d.offset;
  const path = await d.storePathText(`path of output '${name}'`);
  const algoAt = d.offset;
  const algoText = await d.token(`hash algorithm of output '${name}'`);
  const hashAt = d.offset;
  const hash = await d.token(`hash of output '${name}'`);
  if (algoText === "") {
    if (hash !== "") {
      throw d.fail("invalid", `hash of output '${name}'`, hashAt, "a hash without hash algorithm");
    }
    if (path === "") return { type: "deferred" };
    return { type: "inputAddressed", path: d.checkStorePath(path, `output '${name}'`, pathAt) };
  }
  const method: FileIngestionMethod = algoText.startsWith("r:") ? "nar" : "flat";
  const algo = method === "nar" ? algoText.slice(2) : algoText;
  if (algo.startsWith("text:")) {
    throw d.fail(
      "unsupported",
      `hash algorithm of output '${name}'`,
      algoAt,
      `'${algoText}' is text hashing (dynamic derivations), which nixstate does not build`,
    );
  }
  if (!isHashAlgo(algo)) {
    throw d.fail(
      "invalid",
      `hash algorithm of output '${name}' (md5, sha1, sha256 or sha512, optionally after 'r:')`,
      algoAt,
      `got '${algoText}'`,
    );
  }
  if (hash === "" || hash === "impure") {
    throw d.fail(
      "unsupported",
      `hash of output '${name}'`,
      hashAt,
      hash === ""
        ? "a floating content-addressed output (ca-derivations), which nixstate does not build"
        : "an impure output (impure-derivations), which nixstate does not build",
    );
  }
  const checked = d.checkStorePath(path, `output '${name}'`, pathAt);
  try {
    return { type: "fixed", path: checked, method, hash: Hash.parseDigest(hash, algo, false) };
  } catch (error) {
    if (!(error instanceof HashParseError)) throw error;
    throw d.fail("invalid", `hash of output '${name}'`, hashAt, error.message, error);
  }
}

/** Write outputs and env sorted by name, as Nix's maps are; the name is not sent. */
export function writeBasicDerivation(e: WireEncoder, drv: BasicDerivation): void {
  const names = sortBytewise(drv.outputs.keys());
  e.u64(names.length);
  for (const name of names) {
    const out = drv.outputs.get(name)!;
    e.string(name);
    if (out.type === "deferred") e.string("").string("").string("");
    else if (out.type === "inputAddressed") {
      e.storePath(out.path, `output '${name}'`).string("").string("");
    } else {
      e.storePath(out.path, `output '${name}'`);
      e.string(printMethodAlgo(out.method, out.hash)).string(out.hash.toBase16());
    }
  }
  e.storePathSet(drv.inputSrcs, "inputSrc").string(drv.platform).string(drv.builder);
  e.stringList(drv.args);
  const keys = sortBytewise(drv.env.keys());
  e.u64(keys.length);
  for (const key of keys) e.string(key).string(drv.env.get(key)!);
}
