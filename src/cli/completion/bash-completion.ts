// `nixstate completion bash`: a completion function for bash made from the command specs. The
// words before the cursor choose the (sub)command (skipping flags and their values); then the
// cursor's word completes as a flag, a flag's value (its choices, else a file name), or a
// subcommand / file name.
import type { CommandSpec } from "./completion-spec.ts";

const words = (ws: string[]) => ws.join(" ");

export function bashCompletion(specs: CommandSpec[], program: string): string {
  const fn = `_${program.replace(/\W/g, "_")}`;
  const cases = specs
    .map((s) => {
      const choices = Object.entries(s.choices)
        .map(([f, cs]) => `        ${f}) choices="${words(cs)}" ;;\n`)
        .join("");
      return [
        `    "${s.path}")`,
        `      subs="${words([...s.subcommands, ...s.argumentWords])}"`,
        `      flags="${words(s.flags)}"`,
        `      valueflags=" ${words(s.valueFlags)} "`,
        `      args=${s.takesArguments ? 1 : 0}`,
        ...(choices ? [`      case "$2" in\n${choices}      esac`] : []),
        "      ;;",
      ].join("\n");
    })
    .join("\n");
  return `# bash completion for ${program}: eval "$(${program} completion bash)" in ~/.bashrc
${fn}_spec() {
  subs="" flags="" valueflags=" " args=0 choices=""
  case "$1" in
${cases}
  esac
}

${fn}() {
  local cmdpath="" skip=0 i w subs flags valueflags args choices
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    ${fn}_spec "$cmdpath" ""
    case "$w" in
      --*=*) ;;
      -*) [[ $valueflags == *" $w "* ]] && skip=1 ;;
      *) [[ " $subs " == *" $w "* ]] && cmdpath=\${cmdpath:+$cmdpath }$w ;;
    esac
  done
  local cur=\${COMP_WORDS[COMP_CWORD]}
  ${fn}_spec "$cmdpath" "\${COMP_WORDS[COMP_CWORD-1]}"
  COMPREPLY=()
  if ((skip)); then
    if [[ -n $choices ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
    if ((args)); then mapfile -t -O "\${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur"); fi
  fi
}

complete -o filenames -F ${fn} ${program}
`;
}
