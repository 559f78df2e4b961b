// What encoders throw for a value that cannot be put on the wire as given (a path outside the
// store directory, a field the negotiated version lacks…): a bug in the caller, not in the peer.

export class WireValueError extends Error {
  override name = "WireValueError";
}
