// Writing Nix expressions from test data: string literals that Nix reads back exactly.

/** A Nix double-quoted string literal for `s` (Nix strings cannot hold NUL). */
export function nixString(s: string): string {
  let out = '"';
  for (const c of s) {
    if (c === '"' || c === "\\" || c === "$") out += `\\${c}`;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else out += c;
  }
  return `${out}"`;
}

export function nixList(items: string[]): string {
  return `[ ${items.join(" ")} ]`;
}
