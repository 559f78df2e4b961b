// `nixstate completion zsh`: the same walk as the bash function (bash-completion.ts), in zsh: it
// works both sourced (it calls compdef) and as a `_nixstate` file in $fpath.
import type { CommandSpec } from "./completion-spec.ts";

const words = (ws: string[]) => ws.join(" ");

export function zshCompletion(specs: CommandSpec[], program: string): string {
  const fn = `_${program.replace(/\W/g, "_")}`;
  const cases = specs
    .map((s) => {
      const choices = Object.entries(s.choices)
        .map(([f, cs]) => `        ${f}) choices=(${words(cs)}) ;;\n`)
        .join("");
      return [
        `    "${s.path}")`,
        `      subs=(${words([...s.subcommands, ...s.argumentWords])})`,
        `      flags=(${words(s.flags)})`,
        `      valueflags=(${words(s.valueFlags)})`,
        `      args=${s.takesArguments ? 1 : 0}`,
        ...(choices ? [`      case "$2" in\n${choices}      esac`] : []),
        "      ;;",
      ].join("\n");
    })
    .join("\n");
  return `#compdef ${program}
# zsh completion for ${program}: eval "$(${program} completion zsh)" in ~/.zshrc (after compinit)
${fn}_spec() {
  subs=() flags=() valueflags=() args=0 choices=()
  case "$1" in
${cases}
  esac
}

${fn}() {
  local cmdpath="" w
  local -i i skip=0 args=0
  local -a subs flags valueflags choices
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if ((skip)); then skip=0; continue; fi
    ${fn}_spec "$cmdpath" ""
    case "$w" in
      --*=*) ;;
      -*) ((\${valueflags[(Ie)$w]})) && skip=1 ;;
      *) ((\${subs[(Ie)$w]})) && cmdpath=\${cmdpath:+$cmdpath }$w ;;
    esac
  done
  local cur=\${words[CURRENT]}
  ${fn}_spec "$cmdpath" "\${words[CURRENT-1]}"
  if ((skip)); then
    if ((\${#choices})); then compadd -a choices; else _files; fi
  elif [[ $cur == -* ]]; then
    compadd -a flags
  else
    compadd -a subs
    if ((args)); then _files; fi
  fi
}

if [[ \${funcstack[1]} == ${fn} ]]; then ${fn} "$@"; else compdef ${fn} ${program}; fi
`;
}
