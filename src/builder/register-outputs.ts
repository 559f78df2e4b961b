// After a successful builder: check every output exists, make it immutable, find its references,
// verify fixed-output hashes and reference restrictions, and register all outputs at once
// (LocalDerivationGoal::registerOutputs in Nix 2.8, without CA derivations).

import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { Hash } from "../hash/hash.ts";
import { deleteTree } from "../io/delete-tree.ts";
import type { AnyDerivation, BuildMode, OutputStatus } from "../machines/build-attempt.ts";
import type { BuiltOutput } from "../protocol/build-result.ts";
import { hintfmt, type NixHint } from "../protocol/nix-hint.ts";
import { canonicaliseTree, giveOwnCopy } from "../store/canonical-tree.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { PathInfoInput } from "../store/path-info.ts";
import { renderContentAddress } from "../store-path/content-address.ts";
import { makeFixedOutputPath } from "../store-path/make-store-path.ts";
import { checkOutputs, OutputCheckError } from "./output-checks.ts";
import { rewriteHashParts } from "./output-rewrite.ts";
import { scanOutput } from "./output-scan.ts";
import { ParsedDerivation, StructuredAttrsError } from "./structured-attrs.ts";

export type RegisterOutcome =
  | { kind: "registered"; builtOutputs: Record<string, BuiltOutput> }
  | { kind: "outputRejected"; message: string | NixHint; hashMismatch: boolean }
  | { kind: "notDeterministic"; message: string };

export interface RegisterOutputsInput {
  store: LocalStore;
  drvPath: string;
  drv: AnyDerivation;
  outputs: OutputStatus[];
  /** Physical path the builder wrote each output to (a scratch path in check mode). */
  builtAt: Map<string, string>;
  inputPaths: string[];
  mode: BuildMode;
}

/** Give regular files that have other hard links copies of their own, before rewriting them in place. */
function breakHardLinks(path: string): void {
  const st = lstatSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) breakHardLinks(join(path, name));
  } else if (st.isFile() && st.nlink > 1) {
    giveOwnCopy(path);
  }
}

class Rejected extends Error {}

export async function registerOutputs(o: RegisterOutputsInput): Promise<RegisterOutcome> {
  const { store, drv, drvPath } = o;
  const candidates = [...o.inputPaths, ...o.outputs.map((x) => x.path)];
  // Valid outputs rebuilt beside new ones were written to scratch paths; the new outputs must
  // refer to the real ones (normal builds; check mode compares the scratch copies instead).
  const scratchOfValid = new Map<string, string>();
  if (o.mode === "normal") {
    for (const out of o.outputs) {
      const at = o.builtAt.get(out.name);
      if (out.valid && at && at !== store.toRealPath(out.path))
        scratchOfValid.set(hashPartOf(at), hashPartOf(out.path));
    }
  }
  const infos: (PathInfoInput & { name: string })[] = [];
  let hashMismatch: NixHint | undefined;
  try {
    for (const out of o.outputs) {
      // Outputs that were valid before are not registered again (unless checking).
      if (o.mode !== "check" && out.valid) continue;
      const real = o.builtAt.get(out.name) ?? store.toRealPath(out.path);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(real);
      } catch {
        throw new Rejected(
          `builder for '${drvPath}' failed to produce output path for output '${out.name}' at '${real}'`,
        );
      }
      if (!st.isSymbolicLink() && st.mode & 0o022) {
        throw new Rejected(
          `suspicious ownership or permission on '${real}' for output '${out.name}'; rejecting this build output`,
        );
      }
      if (scratchOfValid.size > 0) {
        // Rewriting in place must not reach a file's other hard links.
        breakHardLinks(real);
        rewriteHashParts(real, scratchOfValid);
      }
      canonicaliseTree(real, { breakHardLinks: true });
      const spec = drv.outputs.get(out.name);
      const fixed = spec?.type === "fixed" ? spec : undefined;
      if (fixed?.method === "flat" && (!st.isFile() || st.mode & 0o100)) {
        throw new Rejected(
          `output path '${real}' should be a non-executable regular file since recursive hashing is not enabled (outputHashMode=flat)`,
        );
      }
      const rewrite =
        real !== store.toRealPath(out.path)
          ? { from: hashPartOf(real), to: hashPartOf(out.path) }
          : undefined;
      const scan = await scanOutput(real, candidates, {
        ...(fixed?.method === "nar" ? { extraAlgo: fixed.hash.algo } : {}),
        ...(rewrite ? { rewrite } : {}),
      });
      const info: PathInfoInput & { name: string } = {
        name: out.name,
        path: out.path,
        narHash: scan.narHash,
        narSize: scan.narSize,
        references: [...scan.references].sort(),
        deriver: drvPath,
        ultimate: true,
      };
      if (fixed) {
        const got =
          fixed.method === "flat"
            ? new Hash(
                fixed.hash.algo,
                createHash(fixed.hash.algo).update(readFileSync(real)).digest(),
              )
            : scan.extraHash!;
        info.ca = renderContentAddress({ method: fixed.method, hash: got });
        if (!got.equals(fixed.hash)) {
          hashMismatch = hintfmt`hash mismatch in fixed-output derivation '${drvPath}':\n  specified: ${fixed.hash.toSri()}\n     got:    ${got.toSri()}`;
          // As Nix: keep what was fetched, under the path its real hash gives.
          const actual = store.storeDir.print(
            makeFixedOutputPath(store.storeDir, drv.name, fixed.method, got),
          );
          if (!store.isValidPath(actual)) {
            deleteTree(store.toRealPath(actual));
            renameSync(real, store.toRealPath(actual));
            store.registerValidPaths([{ ...info, path: actual, references: [] }]);
          } else deleteTree(real);
          continue;
        }
      }
      infos.push(info);
    }
    if (hashMismatch) return { kind: "outputRejected", message: hashMismatch, hashMismatch: true };

    if (o.mode === "check") return compareWithValid(o, infos);

    checkOutputs(
      new ParsedDerivation(drvPath, drv),
      infos.map((i) => ({
        name: i.name,
        path: i.path,
        references: [...(i.references ?? [])],
        narSize: i.narSize,
      })),
      (s) => store.storeDir.isStorePath(s),
      (path) => store.queryPathInfo(path),
    );
    store.registerValidPaths(infos.map(({ name: _, ...info }) => info));
    // What the builder wrote for outputs that were valid already goes: the valid ones stay.
    for (const out of o.outputs) {
      const at = o.builtAt.get(out.name);
      if (out.valid && at && at !== store.toRealPath(out.path)) deleteTree(at);
    }
  } catch (e) {
    if (
      e instanceof Rejected ||
      e instanceof OutputCheckError ||
      e instanceof StructuredAttrsError
    ) {
      return { kind: "outputRejected", message: e.message, hashMismatch: false };
    }
    throw e;
  }
  // Object.fromEntries, not assignment: an output may be named `__proto__`.
  const builtOutputs: Record<string, BuiltOutput> = Object.fromEntries(
    o.outputs.filter((x) => x.wanted).map((x) => [x.name, { id: x.id, outPath: x.path }]),
  );
  return { kind: "registered", builtOutputs };
}

function hashPartOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base.slice(0, 32);
}

/** Check mode: the rebuilt outputs must have the NAR hashes of the registered ones. */
function compareWithValid(o: RegisterOutputsInput, infos: PathInfoInput[]): RegisterOutcome {
  for (const info of infos) {
    const old = o.store.queryPathInfo(info.path);
    const scratch = o.builtAt.get(o.outputs.find((x) => x.path === info.path)!.name);
    if (!old.narHash.equals(info.narHash)) {
      // Keep the differing build next to the valid one, as `<path>.check`, for diffing.
      const real = o.store.toRealPath(info.path);
      let kept = "";
      if (scratch && scratch !== real) {
        kept = `${real}.check`;
        deleteTree(kept);
        renameSync(scratch, kept);
      }
      return {
        kind: "notDeterministic",
        message: `derivation '${o.drvPath}' may not be deterministic: output '${real}' differs${kept ? ` from '${kept}'` : ""}`,
      };
    }
  }
  for (const [, at] of o.builtAt) deleteTree(at);
  return {
    kind: "registered",
    builtOutputs: Object.fromEntries(
      o.outputs.filter((x) => x.wanted).map((x) => [x.name, { id: x.id, outPath: x.path }]),
    ),
  };
}
