// Reading path infos from a real Nix store's database (Nix 2.x schema: ValidPaths, Refs), read
// only. Used to import paths from a Nix store with their exact metadata.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type { PathInfoInput } from "./path-info.ts";
import { sqliteAddon } from "./sqlite-addon.ts";
import { StoreDatabaseError } from "./store-errors.ts";
import { type PathRow, pathInfoOfRow } from "./store-statements.ts";

/**
 * Where Nix keeps the database of the store in `storeDir`, if it can be found: under
 * $NIX_STATE_DIR (`<state>/db/db.sqlite`, as Nix looks for it), else next to the store
 * (`/nix/store` → `/nix/var/nix/db/db.sqlite`).
 */
export function findNixDbFile(
  storeDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const candidates = [
    ...(env.NIX_STATE_DIR ? [join(env.NIX_STATE_DIR, "db", "db.sqlite")] : []),
    join(dirname(storeDir), "var", "nix", "db", "db.sqlite"),
  ];
  return candidates.find((f) => existsSync(f));
}

export class NixDbReader {
  readonly #db: Database.Database;
  // Nix's ValidPaths table has the same columns as ours.
  readonly #row: Database.Statement<[string], PathRow>;
  readonly #refs: Database.Statement<[number], { path: string }>;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#row = db.prepare(
      "SELECT id, hash, registrationTime, deriver, narSize, ultimate, sigs, ca FROM ValidPaths WHERE path = ?",
    );
    this.#refs = db.prepare(
      "SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?",
    );
  }

  static open(file: string): NixDbReader {
    if (!existsSync(file)) {
      throw new StoreDatabaseError(
        `no Nix database at '${file}'; pass the right one (e.g. --nix-db /nix/var/nix/db/db.sqlite)`,
      );
    }
    try {
      return new NixDbReader(
        new Database(file, { readonly: true, fileMustExist: true, nativeBinding: sqliteAddon() }),
      );
    } catch (e) {
      throw new StoreDatabaseError(
        `cannot read the Nix database '${file}': ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  queryPathInfo(path: string): PathInfoInput | undefined {
    const row = this.#row.get(path);
    if (row === undefined) return undefined;
    return pathInfoOfRow(
      path,
      row,
      this.#refs.all(row.id).map((r) => r.path),
    );
  }

  close(): void {
    this.#db.close();
  }
}
