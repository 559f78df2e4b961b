/** A usage problem the CLI reports as `error: …` with exit code 1. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}

function describeErrno(code: string): string {
  const known: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EEXIST: "it already exists",
    ENOTDIR: "a parent is not a directory",
    EISDIR: "it is a directory",
  };
  return known[code] ?? code;
}

/** What `error: …` says of a thrown value: a system call's failure in words, else its message. */
export function errorMessage(e: unknown): string {
  const sys = e as NodeJS.ErrnoException;
  return sys?.code && sys.syscall && sys.path
    ? `cannot ${sys.syscall} '${sys.path}': ${describeErrno(sys.code)}`
    : e instanceof Error
      ? e.message
      : String(e);
}
