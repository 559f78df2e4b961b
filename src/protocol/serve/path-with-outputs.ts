// BuildPaths' entries (serve-protocol.md §6.6): `PATH` or `PATH!OUT1,OUT2` (a .drv and the
// outputs wanted from it; none listed = all of them, or for a non-.drv path: make it valid).

export interface PathWithOutputs {
  path: string;
  /** In the order written; empty when the entry has no `!`. */
  outputs: string[];
}

export class PathWithOutputsError extends Error {
  override name = "PathWithOutputsError";
}

/** Split `PATH!OUT1,OUT2`; the path itself is checked by the caller. */
export function parsePathWithOutputs(text: string): PathWithOutputs {
  const bang = text.indexOf("!");
  if (bang < 0) return { path: text, outputs: [] };
  const outputs = text.slice(bang + 1).split(",");
  if (outputs.some((o) => o === "")) {
    throw new PathWithOutputsError(
      `'${text}' has an empty output name (expected 'PATH!OUT1,OUT2' or just 'PATH')`,
    );
  }
  return { path: text.slice(0, bang), outputs };
}

export function renderPathWithOutputs(p: PathWithOutputs): string {
  for (const o of p.outputs) {
    if (o === "" || o.includes(",")) {
      throw new PathWithOutputsError(`output name '${o}' of '${p.path}' cannot be written`);
    }
  }
  return p.outputs.length === 0 ? p.path : `${p.path}!${p.outputs.join(",")}`;
}
