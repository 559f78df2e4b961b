// Whether sandboxed builds can run here. In CI a missing or unusable bubblewrap is an error, not
// a skip: the sandbox's tests must run there.
import { sandboxAvailable } from "../../src/builder/sandbox.ts";

export function haveSandbox(): boolean {
  const ok = sandboxAvailable();
  if (!ok && process.env.CI === "true")
    throw new Error(
      "bubblewrap not found or cannot create namespaces but CI=true: install bubblewrap (.ci/run does)",
    );
  return ok;
}
