// The serve protocol has no error frame (serve-protocol.md §7): on any error the server prints
// `error: <message>` on stderr and exits 1. A ServeError carries exactly that message, worded
// as Nix 2.8 words it, so clients that match on Nix's text keep working.

export class ServeError extends Error {
  override name = "ServeError";
}
