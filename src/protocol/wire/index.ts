export * from "./protocol-error.ts";
export * from "./wire-decoder.ts";
export * from "./wire-encoder.ts";
export * from "./wire-limits.ts";
export * from "./wire-nar.ts";
export * from "./wire-value-error.ts";
