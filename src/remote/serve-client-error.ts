// What a ServeClient throws when a session cannot go on. The serve protocol has no error frame
// (serve-protocol.md §7): a failing server prints `error: …` on stderr and exits, so the client
// sees end of file; the server's stderr tail, when the transport has it, is the real reason.

export type ServeClientErrorCode =
  /** The server closed its output (exited, crashed, was killed) before the reply was complete. */
  | "hangup"
  /** The first bytes were not the serve protocol's greeting (a login banner, another program). */
  | "bad-greeting"
  /** The server speaks a version we cannot use (wrong major, or below our minimum). */
  | "version"
  /** A reply that breaks the protocol (bad path, hash, count…): the peer speaks something else. */
  | "protocol"
  /** The request could not be sent (the server's input was closed) or the client was closed. */
  | "closed"
  /** A request failed half-sent (its data ran short or threw): the session is out of step. */
  | "aborted";

export class ServeClientError extends Error {
  override name = "ServeClientError";

  constructor(
    readonly code: ServeClientErrorCode,
    /** Where the server runs, for messages: a host name or a command line. */
    readonly server: string,
    /** What went wrong, without the server's stderr. */
    readonly problem: string,
    /** The last lines the server wrote on stderr (its `error: …`), when the transport has them. */
    readonly stderrTail: string | undefined,
    options?: { cause?: unknown },
  ) {
    const tail = stderrTail?.trim();
    super(
      `'nix-store --serve' on '${server}': ${problem}${tail ? `\nserver stderr:\n${tail}` : ""}`,
      options,
    );
  }
}
