// Nix 2.8 renders error messages with boost::format through `hintfmt`, which wraps every
// argument in ANSI magenta bold (fmt.hh's yellowtxt); a message formatted beforehand and thrown
// as one string keeps its own colours. Where the message lands adds more: a goal's error in a
// BuildResult starts with ANSI normal, a thrown error's text with a red "error:". Those bytes
// travel in serve replies, so a server that wants Nix's replies byte for byte needs them, while
// our own terminal output stays plain. A NixHint carries both renderings.

const ANSI_WARNING = "\x1b[35;1m";
const ANSI_NORMAL = "\x1b[0m";
const ANSI_BOLD = "\x1b[1m";
const ANSI_RED = "\x1b[31;1m";

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

const ERROR_PREFIX = `${ANSI_RED}error:${ANSI_NORMAL} `;

/** What a BuildResult knows of its error's Nix rendering (see BuildResult.errorAnsi). */
interface ResultError {
  errorMsg: string;
  errorAnsi?: string;
  errorThrown?: boolean;
}

/**
 * errorMsg as BuildDerivation sends it: a goal's error as DerivationGoal::done puts it
 * (`fmt("%s", normaltxt(msg))`: ANSI normal first), an error thrown out of the build as its
 * msg() (red "error:" first).
 */
export function buildResultErrorText(r: ResultError): string {
  if (r.errorAnsi === undefined) return r.errorMsg;
  return r.errorThrown ? `${ERROR_PREFIX}${r.errorAnsi}` : `${ANSI_NORMAL}${r.errorAnsi}`;
}

/** A failed goal's error as msg() renders it when rethrown (BuildPaths' reply): "error:" first. */
export function errorText(r: ResultError | NixHint): string {
  return `${ERROR_PREFIX}${"ansi" in r ? r.ansi : (r.errorAnsi ?? r.errorMsg)}`;
}

const ANSI_ESCAPE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07/g;

/** A message without its colours (a remote's error shown inside one of ours). */
export function stripAnsi(s: string): string {
  return s.replace(ANSI_ESCAPE, "");
}
