// What the store's parts (registration, garbage collector, verifier) share: one database
// connection with its prepared statements, the layout, and the process acting.
import type { StoreDir } from "../store-path/store-path.ts";
import type { PathInfoCache } from "./path-info-cache.ts";
import type { PathLocks } from "./path-locks.ts";
import type { ProcessIdentity } from "./process-identity.ts";
import type { StoreDb } from "./store-database.ts";
import type { StoreLayout } from "./store-settings.ts";
import type { StoreStatements } from "./store-statements.ts";

export interface StoreContext {
  db: StoreDb;
  stmts: StoreStatements;
  /** Infos of valid paths read before; whoever invalidates paths clears it. */
  infoCache: PathInfoCache;
  layout: StoreLayout;
  storeDir: StoreDir;
  locks: PathLocks;
  /** Owner of the temp roots and locks this store creates. */
  owner: ProcessIdentity;
  /** Whether nixstate created the store directory (then anything invalid in it is garbage). */
  ownsStoreDir: boolean;
  /** Where the contents of a (logical) store path are on disk. */
  realPath(path: string): string;
}
