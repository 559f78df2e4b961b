// `nixstate completion bash|zsh`: print a shell completion script made from this program's
// commands and flags (src/cli/completion/).
import { Argument, type Command } from "commander";
import { bashCompletion } from "../completion/bash-completion.ts";
import { completionSpecs } from "../completion/completion-spec.ts";
import { zshCompletion } from "../completion/zsh-completion.ts";
import { writeStdout } from "../stdout.ts";

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .description(
      'print a shell completion script (in ~/.bashrc: eval "$(nixstate completion bash)")',
    )
    .addArgument(new Argument("<shell>", "the shell").choices(["bash", "zsh"]))
    .action(async (shell: "bash" | "zsh") => {
      const specs = completionSpecs(program);
      const script = shell === "zsh" ? zshCompletion : bashCompletion;
      await writeStdout(script(specs, program.name()));
    });
}
