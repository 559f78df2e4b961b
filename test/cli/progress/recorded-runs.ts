// The recorded runs the internal-json tests read (test/cli/fixtures/internal-json), as events.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RunEvent } from "../../../src/events/run-event.ts";
import { repoRoot } from "../../vectors.ts";

export function recorded(name: string): RunEvent[] {
  return readFileSync(join(repoRoot, "test/cli/fixtures/internal-json", name), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RunEvent);
}
