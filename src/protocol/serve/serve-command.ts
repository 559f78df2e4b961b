// Command codes of the serve protocol (serve-protocol.md §6) and the version each needs.

import { ServeFeature } from "./serve-version.ts";

export const ServeCommand = {
  QueryValidPaths: 1,
  QueryPathInfos: 2,
  DumpStorePath: 3,
  ImportPaths: 4,
  ExportPaths: 5,
  BuildPaths: 6,
  QueryClosure: 7,
  BuildDerivation: 8,
  AddToStoreNar: 9,
} as const;

export type ServeCommandName = keyof typeof ServeCommand;

/** The lowest minor version at which each command exists. */
export const SERVE_COMMAND_MINOR: Record<ServeCommandName, number> = {
  QueryValidPaths: 0,
  QueryPathInfos: 0,
  DumpStorePath: 0,
  ImportPaths: 0,
  ExportPaths: 0,
  BuildPaths: 0,
  QueryClosure: 0,
  BuildDerivation: ServeFeature.buildDerivation,
  AddToStoreNar: ServeFeature.addToStoreNar,
};

/** The command with this code, or undefined for codes the protocol does not have. */
export function serveCommandName(code: number): ServeCommandName | undefined {
  for (const [name, c] of Object.entries(ServeCommand)) {
    if (c === code) return name as ServeCommandName;
  }
  return undefined;
}
