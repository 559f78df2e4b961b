// `nixstate store …`: the local store from the command line, after `nix-store` and
// `nix path-info` (Nix 2.8 output formats where there is one).

import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { ByteReader } from "../../io/byte-reader.ts";
import { writeChunks } from "../../io/writable-sink.ts";
import type { LocalStore } from "../../store/local-store.ts";
import { findNixDbFile, NixDbReader } from "../../store/nix-db-reader.ts";
import { importDerivations } from "../../store/nix-store-import.ts";
import { pathInfoJson } from "../../store/path-info.ts";
import { StoreError } from "../../store/store-errors.ts";
import { CliUsageError } from "../cli-error.ts";
import { stdinSource } from "../stdin.ts";
import { writeStdout } from "../stdout.ts";
import { addStoreOptions, type StoreCliOptions, withStore } from "../store-options.ts";

function lines(paths: Iterable<string>): string {
  let out = "";
  for (const p of paths) out += `${p}\n`;
  return out;
}

/** `--json` output: one JSON document and a newline. */
function json(value: unknown): Promise<void> {
  return writeStdout(`${JSON.stringify(value)}\n`);
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(2);
}

/** Arguments as store paths: store paths, paths inside them, or symlinks (`result`) to them. */
function storePaths(store: LocalStore, args: readonly string[]): string[] {
  return args.map((a) => store.followLinksToStorePath(a));
}

interface PathInfoOptions extends StoreCliOptions {
  json?: boolean;
  closure?: boolean;
  closureSize?: boolean;
  all?: boolean;
}

interface QueryOptions extends StoreCliOptions {
  references?: boolean;
  referrers?: boolean;
  requisites?: boolean;
  referrersClosure?: boolean;
  deriver?: boolean;
  validDerivers?: boolean;
  outputs?: boolean;
  includeOutputs?: boolean;
  json?: boolean;
}

function closureSize(store: LocalStore, path: string): number {
  return store.computeFSClosure([path]).reduce((n, p) => n + store.queryPathInfo(p).narSize, 0);
}

async function pathInfo(args: string[], opts: PathInfoOptions): Promise<void> {
  await withStore(opts, async (store) => {
    if (opts.all && args.length > 0) throw new CliUsageError("give paths or --all, not both");
    let paths = opts.all ? store.queryAllValidPaths() : storePaths(store, args);
    if (opts.closure) paths = store.computeFSClosure(paths);
    paths = [...new Set(paths)].sort();
    const infos = paths.map((p) => store.queryPathInfo(p));
    if (opts.json) {
      const json = infos.map((info) =>
        pathInfoJson(info, opts.closureSize ? { closureSize: closureSize(store, info.path) } : {}),
      );
      await writeStdout(`${JSON.stringify(json)}\n`);
      return;
    }
    let out = "";
    for (const info of infos) {
      out += opts.closureSize
        ? `${info.path}\t${closureSize(store, info.path)}\n`
        : `${info.path}\n`;
    }
    await writeStdout(out);
  });
}

const QUERY_KINDS = [
  "references",
  "referrers",
  "requisites",
  "referrersClosure",
  "deriver",
  "validDerivers",
  "outputs",
] as const;

async function query(args: string[], opts: QueryOptions): Promise<void> {
  const kinds = QUERY_KINDS.filter((k) => opts[k]);
  if (kinds.length !== 1) {
    throw new CliUsageError(
      "give exactly one of --references, --referrers, --requisites, --referrers-closure, --deriver, --valid-derivers, --outputs",
    );
  }
  await withStore(opts, async (store) => {
    const paths = storePaths(store, args);
    const include = opts.includeOutputs ?? false;
    let out: string[] = [];
    switch (kinds[0]) {
      case "references":
      case "referrers": {
        const set = new Set<string>();
        for (const p of paths) {
          const next = opts.references ? store.queryReferences(p) : store.queryReferrers(p);
          for (const q of next) set.add(q);
        }
        out = [...set].sort();
        break;
      }
      case "requisites":
        // As nix-store -qR: the closure, dependencies first.
        out = store.topoSortPaths(store.computeFSClosure(paths, { includeOutputs: include }));
        break;
      case "referrersClosure":
        out = store.computeFSClosure(paths, { flipDirection: true, includeOutputs: include });
        break;
      case "deriver":
        out = paths.map((p) => store.queryPathInfo(p).deriver ?? "unknown-deriver");
        // JSON: each path with its deriver (null when unknown).
        if (opts.json)
          return json(
            Object.fromEntries(paths.map((p) => [p, store.queryPathInfo(p).deriver ?? null])),
          );
        break;
      case "validDerivers":
        out = [...new Set(paths.flatMap((p) => store.queryValidDerivers(p)))].sort();
        break;
      case "outputs":
        out = paths.flatMap((p) => [...store.queryDerivationOutputs(p).values()]);
        // JSON: each derivation with its outputs by name.
        if (opts.json)
          return json(
            Object.fromEntries(
              paths.map((p) => [p, Object.fromEntries(store.queryDerivationOutputs(p))]),
            ),
          );
        break;
    }
    await (opts.json ? json(out) : writeStdout(lines(out)));
  });
}

export function registerStoreCommands(program: Command): void {
  const store = program
    .command("store")
    .description("the local store: add, query, import, collect garbage, verify");

  addStoreOptions(
    store
      .command("add")
      .description(
        "copy files or directories into the store (as nix-store --add); print their paths",
      )
      .argument("<paths...>")
      .option("--name <name>", "store path name (default: the file's base name)"),
  ).action(async (paths: string[], opts: StoreCliOptions & { name?: string }) => {
    if (opts.name && paths.length > 1) throw new CliUsageError("--name needs a single path");
    await withStore(opts, async (s) => {
      const added: string[] = [];
      for (const p of paths) {
        added.push((await s.addToStore(p, opts.name ? { name: opts.name } : {})).path);
      }
      await writeStdout(lines(added));
    });
  });

  addStoreOptions(
    store
      .command("path-info")
      .description("print path information (as nix path-info; --json is Nix 2.8's format)")
      .argument("[paths...]")
      .option("--json", "print JSON")
      .option("-r, --closure", "the closures of the paths (nix path-info --recursive)")
      .option("-S, --closure-size", "also print each path's closure size")
      .option("--all", "all valid paths"),
  ).action(pathInfo);

  addStoreOptions(
    store
      .command("query")
      .description("query the store's relations (as nix-store --query)")
      .argument("<paths...>")
      .option("--references", "paths the given paths refer to")
      .option("--referrers", "valid paths that refer to the given paths")
      .option("-R, --requisites", "the closure of the given paths, dependencies first")
      .option("--referrers-closure", "everything that refers to the paths, transitively")
      .option("--deriver", "the derivation each path was built from (or unknown-deriver)")
      .option("--valid-derivers", "valid derivations that have the path among their outputs")
      .option("--outputs", "the outputs of the given derivations")
      .option("--include-outputs", "with -R and --referrers-closure: include derivation outputs")
      .option(
        "--json",
        "print JSON: a list of paths; for --deriver and --outputs, an object keyed by the given paths",
      ),
  ).action(query);

  addStoreOptions(
    store
      .command("gc")
      .description(
        "delete what no GC root, temp root or running process keeps alive; print the deleted paths",
      )
      .option("--dry-run", "only print what would be deleted")
      .option("--keep-outputs", "also keep the outputs of live derivations")
      .option("--json", 'print {"deleted": [paths], "bytesFreed": n, "dryRun": bool}'),
  ).action(
    async (opts: StoreCliOptions & { dryRun?: boolean; keepOutputs?: boolean; json?: boolean }) => {
      await withStore(
        opts,
        async (s) => {
          const r = await s.collectGarbage({
            dryRun: opts.dryRun ?? false,
            keepOutputs: opts.keepOutputs ?? false,
          });
          if (opts.json) {
            await json({ deleted: r.deleted, bytesFreed: r.bytesFreed, dryRun: !!opts.dryRun });
            return;
          }
          await writeStdout(lines(r.deleted));
          process.stderr.write(
            opts.dryRun
              ? `${r.deleted.length} store paths would be deleted (${mib(r.bytesFreed)} MiB)\n`
              : `${r.deleted.length} store paths deleted, ${mib(r.bytesFreed)} MiB freed\n`,
          );
        },
        { sweepDeadLocks: !opts.dryRun },
      );
    },
  );

  addStoreOptions(
    store
      .command("delete")
      .description("delete paths that nothing keeps alive or refers to (as nix-store --delete)")
      .argument("<paths...>")
      .option("--json", 'print {"deleted": [paths], "bytesFreed": n}'),
  ).action(async (paths: string[], opts: StoreCliOptions & { json?: boolean }) => {
    await withStore(opts, async (s) => {
      const r = await s.collectGarbage({ paths: storePaths(s, paths) });
      if (opts.json) {
        await json({ deleted: r.deleted, bytesFreed: r.bytesFreed });
        return;
      }
      await writeStdout(lines(r.deleted));
      process.stderr.write(
        `${r.deleted.length} store paths deleted, ${mib(r.bytesFreed)} MiB freed\n`,
      );
    });
  });

  addStoreOptions(
    store
      .command("verify")
      .description("check every valid path's contents against its NAR hash and size")
      .option("--no-check-contents", "only check that the contents exist")
      .option("--repair", "repair what is broken (not available yet)")
      .option(
        "--json",
        'print {"checked": n, "problems": [{"path", "message"}]} (exit code 1 if any problem)',
      ),
  ).action(
    async (
      opts: StoreCliOptions & { checkContents: boolean; repair?: boolean; json?: boolean },
    ) => {
      if (opts.repair) {
        throw new CliUsageError(
          "verify --repair is not available yet: there is no substituter or rebuild to repair from",
        );
      }
      await withStore(opts, async (s) => {
        const report = await s.verifyStore({ checkContents: opts.checkContents });
        if (opts.json) {
          await json({
            checked: report.checked,
            problems: report.problems.map((p) => ({ path: p.path, message: p.message })),
          });
          if (report.problems.length > 0) process.exitCode = 1;
          return;
        }
        for (const p of report.problems) process.stderr.write(`error: ${p.message}\n`);
        if (report.problems.length > 0) {
          throw new StoreError(
            `store verification found ${report.problems.length} problem(s) in ${report.checked} paths`,
          );
        }
        process.stderr.write(`checked ${report.checked} paths: all good\n`);
      });
    },
  );

  addStoreOptions(
    store
      .command("add-drv")
      .description(
        "import .drv files from a Nix store with their input derivations and sources; print their paths",
      )
      .argument("<files...>")
      .option(
        "--nix-db <file>",
        "Nix's database, for the sources' path infos (default: $NIX_STATE_DIR/db/db.sqlite or <store-dir>/../var/nix/db/db.sqlite, when there)",
      ),
  ).action(async (files: string[], opts: StoreCliOptions & { nixDb?: string }) => {
    await withStore(opts, async (s) => {
      const dbFile = opts.nixDb ?? findNixDbFile(dirname(resolve(files[0]!)));
      const nixDb = dbFile === undefined ? undefined : NixDbReader.open(dbFile);
      try {
        await writeStdout(lines(await importDerivations(s, files, { nixDb })));
      } finally {
        nixDb?.close();
      }
    });
  });

  addStoreOptions(
    store
      .command("import")
      .description("import paths from a nix-store --export stream on stdin; print their paths"),
  ).action(async (opts: StoreCliOptions) => {
    await withStore(opts, async (s) => {
      await writeStdout(lines(await s.importExport(new ByteReader(stdinSource()))));
    });
  });

  addStoreOptions(
    store
      .command("export")
      .description("write the paths as a nix-store --export stream to stdout")
      .argument("<paths...>"),
  ).action(async (paths: string[], opts: StoreCliOptions) => {
    await withStore(opts, async (s) => {
      await writeChunks(s.exportPaths(storePaths(s, paths)), process.stdout);
    });
  });

  addStoreOptions(
    store
      .command("add-root")
      .description("make a path a permanent GC root named <name> (under <state-dir>/gcroots)")
      .argument("<name>")
      .argument("<path>"),
  ).action(async (name: string, path: string, opts: StoreCliOptions) => {
    await withStore(opts, async (s) => {
      const p = s.followLinksToStorePath(path);
      s.queryPathInfo(p);
      await writeStdout(`${s.addPermRoot(p, name)}\n`);
    });
  });

  addStoreOptions(
    store
      .command("roots")
      .description("list the GC roots: <link> -> <store path>")
      .option("--json", 'print [{"link", "path"}]'),
  ).action(async (opts: StoreCliOptions & { json?: boolean }) => {
    await withStore(opts, async (s) => {
      const roots: { link: string; path: string }[] = [];
      for (const [path, links] of s.findRoots())
        for (const link of links) roots.push({ link, path });
      roots.sort((a, b) => (a.link < b.link ? -1 : a.link > b.link ? 1 : 0));
      if (opts.json) {
        await json(roots);
        return;
      }
      await writeStdout(lines(roots.map((r) => `${r.link} -> ${r.path}`)));
    });
  });
}
