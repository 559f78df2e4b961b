// The NAR of a tree model, built token by token: an encoder independent of nar-dump.ts.

import type { TreeNode } from "./file-tree.ts";
import { directory, type NarToken, nar, regular, symlink } from "./hand-built-nar.ts";

export function treeTokens(node: TreeNode): NarToken[] {
  switch (node.type) {
    case "regular":
      return regular(node.contents, node.executable);
    case "symlink":
      return symlink(node.target);
    case "directory":
      return directory(node.entries.map((e) => [e.name, treeTokens(e.node)]));
  }
}

export function treeNar(node: TreeNode): Buffer {
  return nar(treeTokens(node));
}
