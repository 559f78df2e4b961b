// Build directories are created and removed for every build; in one parent directory those
// operations serialise on the directory's lock. Most builds leave their directory empty, so an
// empty one is handed to the next build instead of being removed and made again.
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { deleteTree } from "../store/canonical-tree.ts";

export class BuildDirPool {
  private readonly idle: string[] = [];
  private made = false;

  constructor(private readonly root: string) {}

  acquire(): string {
    const reused = this.idle.pop();
    if (reused) return reused;
    if (!this.made) {
      mkdirSync(this.root, { recursive: true });
      this.made = true;
    }
    return mkdtempSync(join(this.root, "nix-build-"));
  }

  /** Give a directory back; returns the removal still running when it was not empty. */
  release(dir: string): Promise<void> | undefined {
    if (readdirSync(dir).length === 0) {
      this.idle.push(dir);
      return undefined;
    }
    return rm(dir, { recursive: true, force: true }).catch(() => {
      deleteTree(dir);
    });
  }

  /** Remove the idle directories (at the end of a run). */
  async close(): Promise<void> {
    const dirs = this.idle.splice(0);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
