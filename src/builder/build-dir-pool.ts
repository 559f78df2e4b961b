// Build directories are created and removed for every build; in one parent directory those
// operations serialise on the directory's lock. Most builds leave their directory empty, so an
// empty one is handed to the next build instead of being removed and made again. Each is named
// after its process (`nix-build-<pid>-XXXXXX`), so the directories a killed run left behind are
// taken back by the next run here; kept ones (-K, `…-<name>`) stay.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { deleteTree } from "../io/delete-tree.ts";
import { isPidAlive } from "../store/process-identity.ts";

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
      removeDeadProcessesDirs(this.root);
    }
    return mkdtempSync(join(this.root, `nix-build-${process.pid}-`));
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

const POOLED = /^nix-build-(\d+)-[A-Za-z0-9]{6}$/;

/** Remove pooled directories whose process is gone; kept (renamed) ones are the user's. */
function removeDeadProcessesDirs(root: string): void {
  for (const name of readdirSync(root)) {
    const m = POOLED.exec(name);
    if (!m || isPidAlive(Number(m[1]))) continue;
    try {
      rmSync(join(root, name), { recursive: true, force: true });
    } catch {
      deleteTree(join(root, name));
    }
  }
}
