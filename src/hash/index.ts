export { compressHash } from "./compress-hash.ts";
export * from "./hash.ts";
export * from "./nix32.ts";
