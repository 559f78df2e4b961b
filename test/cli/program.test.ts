// A run loads only the module of the command it names: every command the full program has must
// be found that way too, with the same options as when every command is loaded.
import { describe, expect, it } from "vitest";
import { COMMAND_NAMES, makeProgram, serveFlagToCommand } from "../../src/cli/program.ts";
import { loadSettings } from "../../src/cli/settings/settings.ts";

const settings = () => loadSettings({}, () => undefined);

describe("the command table", () => {
  it("names every command of the full program, and loads each one alone", async () => {
    const all = await makeProgram(settings(), []);
    const names = all.commands.map((c) => c.name());
    expect([...names].sort()).toEqual([...COMMAND_NAMES].sort());
    for (const name of names) {
      const one = await makeProgram(settings(), [name]);
      const cmd = one.commands.find((c) => c.name() === name);
      expect(cmd, name).toBeDefined();
      const full = all.commands.find((c) => c.name() === name)!;
      expect(cmd!.options.map((o) => o.flags)).toEqual(full.options.map((o) => o.flags));
      expect(cmd!.commands.map((c) => c.name())).toEqual(full.commands.map((c) => c.name()));
    }
  });

  it("loads every command for completion, show-config, help and unknown words, none for the version", async () => {
    for (const word of ["completion", "show-config", "--help", "bild", undefined]) {
      const p = await makeProgram(settings(), word === undefined ? [] : [word]);
      expect(p.commands.length, String(word)).toBe(COMMAND_NAMES.length);
    }
    expect((await makeProgram(settings(), ["--version"])).commands).toHaveLength(0);
    expect(serveFlagToCommand(["--serve", "--write"])[0]).toBe("serve");
  });
});
