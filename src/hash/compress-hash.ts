/** Fold a digest to `size` bytes by XOR, as Nix does to make 20-byte store path hashes. */
export function compressHash(digest: Uint8Array, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < digest.length; i++) out[i % size]! ^= digest[i]!;
  return out;
}
