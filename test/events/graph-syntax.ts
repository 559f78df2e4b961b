// Readers for what `nixstate graph` writes, strict enough to catch a name that breaks the syntax:
// DOT read as Graphviz's lexer reads it (lib/cgraph/scan.l: in a quoted string `\"` is a quote,
// `\\` a pair of backslashes, a backslash-newline nothing, anything else itself; labels then read
// `\\` as one backslash and `\n` as a line break), and a Mermaid flowchart line by line, its labels
// decoded as Mermaid decodes them (`#<decimal>;` entities, `<br>` line breaks).

export interface DotGraph {
  name: string;
  /** `graph`, `node` and `edge` defaults. */
  defaults: Record<string, Record<string, string>>;
  /** Node id (as the lexer gives it) → attributes, in order of declaration. */
  nodes: Map<string, Record<string, string>>;
  edges: { from: string; to: string; attrs: Record<string, string> }[];
}

type Token = { t: "id" | "q"; v: string } | { t: "p"; v: string };

function dotTokens(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let v = "";
      i++;
      for (;;) {
        if (i >= text.length) throw new Error("DOT: a quoted string does not end");
        const d = text[i]!;
        const next = text[i + 1];
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && next === '"') {
          v += '"';
          i += 2;
        } else if (d === "\\" && next === "\\") {
          v += "\\\\";
          i += 2;
        } else if (d === "\\" && next === "\n") {
          i += 2;
        } else {
          v += d;
          i++;
        }
      }
      tokens.push({ t: "q", v });
    } else if (text.startsWith("->", i)) {
      tokens.push({ t: "p", v: "->" });
      i += 2;
    } else if ("{}[];,=".includes(c)) {
      tokens.push({ t: "p", v: c });
      i++;
    } else {
      const m = /^(?:[A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*|-?(?:\d+(?:\.\d*)?|\.\d+))/.exec(
        text.slice(i),
      );
      if (!m) throw new Error(`DOT: unexpected '${c}' at ${i}`);
      tokens.push({ t: "id", v: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

/** A whole `digraph` as Graphviz would parse it; throws on anything it would reject. */
export function parseDot(text: string): DotGraph {
  const tokens = dotTokens(text);
  let k = 0;
  const peek = () => tokens[k];
  const take = (): Token => {
    const t = tokens[k++];
    if (!t) throw new Error("DOT: unexpected end");
    return t;
  };
  const punct = (v: string) => {
    const t = take();
    if (t.t !== "p" || t.v !== v) throw new Error(`DOT: expected '${v}', got '${t.v}'`);
  };
  const isPunct = (v: string) => peek()?.t === "p" && peek()?.v === v;
  const id = (): string => {
    const t = take();
    if (t.t === "p") throw new Error(`DOT: expected an id, got '${t.v}'`);
    return t.v;
  };
  const attrList = (): Record<string, string> => {
    const attrs: Record<string, string> = {};
    while (isPunct("[")) {
      punct("[");
      while (!isPunct("]")) {
        const key = id();
        punct("=");
        attrs[key] = id();
        if (isPunct(",") || isPunct(";")) take();
      }
      punct("]");
    }
    return attrs;
  };
  const head = take();
  if (head.t !== "id" || head.v.toLowerCase() !== "digraph") throw new Error("DOT: not a digraph");
  const g: DotGraph = { name: id(), defaults: {}, nodes: new Map(), edges: [] };
  punct("{");
  while (!isPunct("}")) {
    const t = peek()!;
    if (t.t === "id" && ["graph", "node", "edge"].includes(t.v.toLowerCase())) {
      take();
      g.defaults[t.v.toLowerCase()] = attrList();
    } else {
      const ends = [id()];
      while (isPunct("->")) {
        take();
        ends.push(id());
      }
      const attrs = attrList();
      if (ends.length === 1) g.nodes.set(ends[0]!, attrs);
      for (let i = 1; i < ends.length; i++)
        g.edges.push({ from: ends[i - 1]!, to: ends[i]!, attrs });
    }
    if (isPunct(";")) take();
  }
  punct("}");
  if (k !== tokens.length) throw new Error("DOT: text after the graph");
  return g;
}

/** A label's text as Graphviz shows it (escString): `\\` a backslash, `\n` `\l` `\r` line ends. */
export function dotLabelText(v: string): string {
  return v.replace(/\\([\\nlr])?/g, (_, c: string | undefined) =>
    c === "\\" ? "\\" : c === undefined ? "\\" : "\n",
  );
}

export interface MermaidFlowchart {
  /** Node id → its label as shown (entities decoded, `<br>` as a line break). */
  nodes: Map<string, string>;
  edges: { from: string; to: string; arrow: string; label: string | undefined }[];
  /** Class name → its style, and the nodes in it. */
  classes: Map<string, { style: string; members: string[] }>;
}

const NAMED: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">", nbsp: "\u00a0" };

/** A label as Mermaid shows it; throws on what would be read as HTML or end the label. */
export function mermaidLabelText(raw: string): string {
  if (raw.includes('"')) throw new Error("Mermaid: a quote inside a label");
  const decoded = raw.replace(/#(\w+);/g, (_, code: string) => {
    if (/^\d+$/.test(code)) return `\u0000${String.fromCodePoint(Number(code))}\u0000`;
    const named = NAMED[code];
    if (named === undefined) throw new Error(`Mermaid: unknown entity #${code};`);
    return `\u0000${named}\u0000`;
  });
  // Outside the entities: line breaks are <br>, and no other HTML may be there.
  return decoded
    .split(/\u0000(.)\u0000/su)
    .map((part, i) => {
      if (i % 2 === 1) return part;
      const text = part.replace(/<br\s*\/?>/g, "\n");
      if (/[<>&]/.test(text)) throw new Error(`Mermaid: HTML in a label: ${part}`);
      return text;
    })
    .join("");
}

/** A `flowchart` as nixstate writes it, line by line; throws on any line Mermaid would not take. */
export function parseMermaidFlowchart(text: string): MermaidFlowchart {
  const lines = text.split("\n");
  if (lines[0] !== "flowchart TD") throw new Error("Mermaid: not a flowchart");
  if (lines.at(-1) !== "") throw new Error("Mermaid: no final newline");
  const f: MermaidFlowchart = { nodes: new Map(), edges: [], classes: new Map() };
  const NODE = /^ {2}([A-Za-z_][A-Za-z0-9_]*)\["([^"]*)"\]$/;
  const EDGE = /^ {2}(\w+) (-->|==>|-\.->)(?:\|([A-Za-z]+)\|)? (\w+)$/;
  const CLASS_DEF = /^ {2}classDef (\w+) ([\w:#,.-]+)$/;
  const CLASS = /^ {2}class (\w+(?:,\w+)*) (\w+)$/;
  for (const line of lines.slice(1, -1)) {
    if (/^ {2}%%[^\n]*$/.test(line)) continue;
    const node = NODE.exec(line);
    const edge = EDGE.exec(line);
    const classDef = CLASS_DEF.exec(line);
    const cls = CLASS.exec(line);
    if (node) {
      f.nodes.set(node[1]!, mermaidLabelText(node[2]!));
    } else if (edge) {
      for (const end of [edge[1]!, edge[4]!])
        if (!f.nodes.has(end)) throw new Error(`Mermaid: edge to undeclared node ${end}`);
      f.edges.push({ from: edge[1]!, to: edge[4]!, arrow: edge[2]!, label: edge[3] });
    } else if (classDef) {
      f.classes.set(classDef[1]!, { style: classDef[2]!, members: [] });
    } else if (cls) {
      const def = f.classes.get(cls[2]!);
      if (!def) throw new Error(`Mermaid: class ${cls[2]} used before its classDef`);
      def.members.push(...cls[1]!.split(","));
    } else {
      throw new Error(`Mermaid: cannot read line '${line}'`);
    }
  }
  return f;
}
