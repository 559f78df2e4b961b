// Bounds on what a peer can make a decoder buffer. Every length and count read from the wire is
// checked against one of these before anything is allocated or looped over.

export interface WireLimits {
  /** Longest free-text string: env values, args, builders, error messages, realisation JSON. */
  maxStringLength: number;
  /** Longest short token: names, hashes, content addresses, signatures, system types. */
  maxTokenLength: number;
  /** Most elements in one list, set or map (and entries in a QueryPathInfos reply). */
  maxCount: number;
}

/** Generous for real sessions (structured-attrs env values reach megabytes, closures 10^5 paths). */
export const DEFAULT_WIRE_LIMITS: Readonly<WireLimits> = {
  maxStringLength: 64 * 1024 * 1024,
  maxTokenLength: 64 * 1024,
  maxCount: 1 << 24,
};
