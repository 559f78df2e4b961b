export * from "./content-address.ts";
export * from "./make-store-path.ts";
export * from "./store-path.ts";
