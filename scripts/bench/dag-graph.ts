// The benchmark DAG (as in ../shared/notes/real-nix.md): node i depends on nodes ⌊i/2⌋ and ⌊i/3⌋
// and writes one line to $out. Every node is a target (a node depending on all of them would
// need an environment larger than the kernel allows a builder at N=10000).
export interface DagNode {
  name: string;
  deps: number[];
}

export function dagNodes(n: number, salt: string): DagNode[] {
  const nodes: DagNode[] = [];
  for (let i = 0; i < n; i++) {
    const deps =
      i === 0 ? [] : [...new Set([Math.floor(i / 2), Math.floor(i / 3)])].filter((d) => d < i);
    nodes.push({ name: `n${i}-${salt}`, deps });
  }
  return nodes;
}

/** The same DAG as a Nix expression, for nix-instantiate. */
export function dagNixExpr(nodes: DagNode[]): string {
  const lines = nodes.map((node, i) => {
    const deps = node.deps.map((d, k) => `dep${k} = d${d};`).join(" ");
    return `d${i} = derivation { name = "${node.name}"; system = builtins.currentSystem; builder = "/bin/sh"; ${deps} args = ["-c" "echo ${node.name} > $out"]; };`;
  });
  return `let\n${lines.join("\n")}\nin [ ${nodes.map((_, k) => `d${k}`).join(" ")} ]`;
}
