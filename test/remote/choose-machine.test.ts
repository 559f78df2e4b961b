import { describe, expect, it } from "vitest";
import { chooseMachine, machineFits } from "../../src/remote/choose-machine.ts";
import type { Machine } from "../../src/remote/machines-file.ts";

const m = (storeUri: string, over: Partial<Machine> = {}): Machine => ({
  storeUri,
  systemTypes: ["x86_64-linux"],
  sshKey: "",
  maxJobs: 1,
  speedFactor: 1,
  supportedFeatures: [],
  mandatoryFeatures: [],
  sshPublicHostKey: "",
  ...over,
});
const req = (system: string, requiredFeatures: string[] = []) => ({ system, requiredFeatures });
const chosen = (c: ReturnType<typeof chooseMachine>) =>
  c.kind === "chosen" ? c.machine.storeUri : c.kind;

describe("chooseMachine", () => {
  it("matches the system, or any machine for `builtin`", () => {
    const ms = [m("ssh://arm", { systemTypes: ["aarch64-linux"] }), m("ssh://x86")];
    expect(chosen(chooseMachine(ms, req("x86_64-linux")))).toBe("ssh://x86");
    expect(chosen(chooseMachine(ms, req("aarch64-linux")))).toBe("ssh://arm");
    expect(chosen(chooseMachine(ms, req("builtin")))).toBe("ssh://arm");
    expect(chooseMachine(ms, req("riscv64-linux")).kind).toBe("unsuitable");
  });

  it("needs every required feature, supported or mandatory", () => {
    const kvm = m("ssh://kvm", { supportedFeatures: ["kvm"] });
    const big = m("ssh://big", { mandatoryFeatures: ["big-parallel"] });
    expect(machineFits(kvm, req("x86_64-linux", ["kvm"]))).toBe(true);
    expect(machineFits(kvm, req("x86_64-linux", ["kvm", "nixos-test"]))).toBe(false);
    expect(machineFits(big, req("x86_64-linux", ["big-parallel"]))).toBe(true);
  });

  it("uses a machine with mandatory features only for derivations requiring them all", () => {
    const ms = [m("ssh://bench", { mandatoryFeatures: ["benchmark", "kvm"] })];
    expect(chooseMachine(ms, req("x86_64-linux")).kind).toBe("unsuitable");
    expect(chooseMachine(ms, req("x86_64-linux", ["benchmark"])).kind).toBe("unsuitable");
    expect(chosen(chooseMachine(ms, req("x86_64-linux", ["kvm", "benchmark"])))).toBe(
      "ssh://bench",
    );
  });

  it("is busy when fitting machines have no free slot (Nix postpones)", () => {
    const ms = [m("ssh://a", { maxJobs: 2 }), m("ssh://zero", { maxJobs: 0 })];
    expect(chooseMachine(ms, req("x86_64-linux"), [2]).kind).toBe("busy");
    expect(chosen(chooseMachine(ms, req("x86_64-linux"), [1]))).toBe("ssh://a");
    expect(chooseMachine([ms[1]!], req("x86_64-linux")).kind).toBe("busy");
  });

  it("prefers lower load per speed factor, then faster, then less loaded, then first", () => {
    const slow = m("ssh://slow", { maxJobs: 8, speedFactor: 1 });
    const fast = m("ssh://fast", { maxJobs: 8, speedFactor: 4 });
    // 2/1 = 2 vs 3/4 = 0: fast wins.
    expect(chosen(chooseMachine([slow, fast], req("x86_64-linux"), [2, 3]))).toBe("ssh://fast");
    // 0/1 = 0 vs 3/4 = 0 (integer division): tie, the faster machine wins.
    expect(chosen(chooseMachine([slow, fast], req("x86_64-linux"), [0, 3]))).toBe("ssh://fast");
    // 0/1 = 0 vs 4/4 = 1: slow wins.
    expect(chosen(chooseMachine([slow, fast], req("x86_64-linux"), [0, 4]))).toBe("ssh://slow");
    const a = m("ssh://a", { maxJobs: 4 });
    const b = m("ssh://b", { maxJobs: 4 });
    expect(chosen(chooseMachine([a, b], req("x86_64-linux"), [2, 1]))).toBe("ssh://b");
    expect(chosen(chooseMachine([a, b], req("x86_64-linux"), [1, 1]))).toBe("ssh://a");
    const c = chooseMachine([a, b], req("x86_64-linux"), [3, 2]);
    expect(c).toMatchObject({ kind: "chosen", index: 1, load: 2 });
  });
});
