import { defineConfig } from "vitest/config";

// CI asks for a JSON report next to the normal output to print its `N passed, M failed` line.
const json = process.env.VITEST_JSON;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: json ? ["default", ["json", { outputFile: json }]] : ["default"],
  },
});
