import { defineConfig } from "vitest/config";

// CI asks for a JSON report next to the normal output to print its `N passed, M failed` line.
const json = process.env.VITEST_JSON;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Published run events are frozen, so changing one afterwards fails a test (run-recorder.ts).
    env: { NIXSTATE_FREEZE_EVENTS: "1" },
    reporters: json ? ["default", ["json", { outputFile: json }]] : ["default"],
  },
});
