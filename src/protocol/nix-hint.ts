// Nix 2.8 renders error messages with boost::format through `hintfmt`, which wraps every
// argument in ANSI magenta bold (fmt.hh's yellowtxt); a message formatted beforehand and thrown
// as one string is wrapped in `normaltxt`, so it starts with ANSI normal. Those bytes travel in
// BuildResult.errorMsg, so a server that wants Nix's replies byte for byte needs them, while our
// own terminal output stays plain. A NixHint carries both renderings.

const ANSI_WARNING = "\x1b[35;1m";
const ANSI_NORMAL = "\x1b[0m";
const ANSI_BOLD = "\x1b[1m";

export interface NixHint {
  plain: string;
  /** As Nix 2.8 puts it in an error message on the wire. */
  ansi: string;
}

/** An argument shown as it is (boost::format's own `fmt`, no colour). */
export class Uncoloured {
  constructor(readonly text: string) {}
}

/** An argument shown in bold, as Nix's ANSI_BOLD command hints ("For full logs, run …"). */
export class Bold {
  constructor(readonly text: string) {}
}

type HintArg = string | number | Uncoloured | Bold | NixHint;

function render(arg: HintArg): NixHint {
  if (arg instanceof Uncoloured) return { plain: arg.text, ansi: arg.text };
  if (arg instanceof Bold)
    return { plain: arg.text, ansi: `${ANSI_BOLD}${arg.text}${ANSI_NORMAL}` };
  if (typeof arg === "object") return arg;
  const text = String(arg);
  return { plain: text, ansi: `${ANSI_WARNING}${text}${ANSI_NORMAL}` };
}

/** `hintfmt` as a template tag: strings and numbers are coloured arguments. */
export function hintfmt(strings: TemplateStringsArray, ...args: HintArg[]): NixHint {
  let plain = strings[0] ?? "";
  let ansi = plain;
  args.forEach((arg, i) => {
    const r = render(arg);
    const after = strings[i + 1] ?? "";
    plain += r.plain + after;
    ansi += r.ansi + after;
  });
  return { plain, ansi };
}

/** Nix's `Error(std::string)`: a message formatted beforehand, rendered after ANSI normal. */
export function preformatted(hint: NixHint): NixHint {
  return { plain: hint.plain, ansi: `${ANSI_NORMAL}${hint.ansi}` };
}

/** A message Nix builds from plain text only. */
export function plainHint(text: string): NixHint {
  return preformatted({ plain: text, ansi: text });
}
