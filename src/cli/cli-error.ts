/** A usage problem the CLI reports as `error: …` with exit code 1. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}
