// log-update, loaded when a live terminal view starts: it brings string-width and its emoji
// regular expression (~14 ms to compile), which plain output, pipes and serve never need.
import { createRequire } from "node:module";

type LogUpdate = typeof import("log-update");

let loaded: LogUpdate | undefined;

export const createLogUpdate: LogUpdate["createLogUpdate"] = (...args) => {
  loaded ??= createRequire(import.meta.url)("log-update") as LogUpdate;
  return loaded.createLogUpdate(...args);
};
