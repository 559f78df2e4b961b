// `nixstate --serve` is how Nix starts a remote program (`PROGRAM --serve --write`).
import { describe, expect, it } from "vitest";
import { serveFlagToCommand } from "../../src/cli/program.ts";

describe("serveFlagToCommand", () => {
  it("turns the --serve flag into the serve command, keeping the other arguments", () => {
    expect(serveFlagToCommand(["--serve", "--write"])).toEqual(["serve", "--write"]);
    expect(serveFlagToCommand(["--write", "--serve", "--state-dir", "/s"])).toEqual([
      "serve",
      "--write",
      "--state-dir",
      "/s",
    ]);
  });

  it("leaves other command lines alone", () => {
    expect(serveFlagToCommand(["build", "/x.drv"])).toEqual(["build", "/x.drv"]);
    expect(serveFlagToCommand(["hash", "--", "--serve"])).toEqual(["hash", "--", "--serve"]);
  });
});
