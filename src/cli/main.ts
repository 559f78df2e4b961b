// The `nixstate` command line. Each command lives in its own module under commands/.
import { setFlagsFromString } from "node:v8";
import { CommanderError } from "commander";
import { errorMessage } from "./cli-error.ts";
import { makeProgram, serveFlagToCommand } from "./program.ts";
import { loadSettings } from "./settings/settings.ts";

// V8 lets its heap grow to up to 4x what survived the last full collection; a build's live heap is
// small (45 MB at 10,000 goals) but its garbage is not, and a 10,000-goal build peaked at 380 MB.
// Growing by at most 30% keeps it near what it uses (measured in BENCHMARKS.md, "Memory").
// bin/run-bundle.mjs sets the same before compiling the bundle: keep the two equal.
setFlagsFromString("--heap-growing-percent=30");

/** Print an error the way Nix does (`error: …`) and exit 1; stack traces only on request. */
function reportAndExit(e: unknown): never {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  process.stderr.write(`error: ${errorMessage(e)}\n`);
  if (process.env.NIXSTATE_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const settings = loadSettings();
  for (const w of settings.warnings) process.stderr.write(`${w}\n`);
  const args = serveFlagToCommand(process.argv.slice(2));
  await (await makeProgram(settings, args)).parseAsync(args, { from: "user" });
}

// Not a top-level await: the bundle is a CommonJS script (scripts/bundle.mjs), which has none.
// As with one, a command whose work never settles (the event loop emptied under it) exits 13,
// not 0 as if it had succeeded.
let settled = false;
main().then(() => {
  settled = true;
}, reportAndExit);
process.on("beforeExit", () => {
  if (settled || process.exitCode !== undefined) return;
  process.stderr.write(
    "error: nixstate stopped before its command finished (nothing left to wait for)\n",
  );
  process.exitCode = 13;
});
