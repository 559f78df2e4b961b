// Nix wire strings are padded with zero bytes to a multiple of 8.

/** Number of zero bytes that follow `length` bytes of a wire string. */
export function paddingLength(length: number): number {
  // `%` rather than `& 7`: lengths may exceed 2^32, where bitwise operators wrap.
  const rest = length % 8;
  return rest === 0 ? 0 : 8 - rest;
}
