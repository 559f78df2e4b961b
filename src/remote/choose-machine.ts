// The rule Nix 2.8's build hook (src/build-remote/build-remote.cc) uses to pick a remote machine
// for a derivation, as a pure function: the hook's slot lock files become `currentLoads`.
import type { Machine } from "./machines-file.ts";

export interface BuildRequest {
  /** The derivation's `system`; "builtin" derivations run anywhere. */
  system: string;
  /** The derivation's requiredSystemFeatures. */
  requiredFeatures: readonly string[];
}

export type MachineChoice =
  /** Build there; `load` is how many of its slots were busy. */
  | { kind: "chosen"; index: number; machine: Machine; load: number }
  /** Some machine fits but every one of its slots is taken: Nix postpones (unless it can build locally). */
  | { kind: "busy" }
  /** No machine fits the system and features: Nix declines (builds locally or fails). */
  | { kind: "unsuitable" };

/** Whether the machine may build the request at all, ignoring load. */
export function machineFits(m: Machine, request: BuildRequest): boolean {
  const supported = (f: string) =>
    m.supportedFeatures.includes(f) || m.mandatoryFeatures.includes(f);
  return (
    (request.system === "builtin" || m.systemTypes.includes(request.system)) &&
    request.requiredFeatures.every(supported) &&
    m.mandatoryFeatures.every((f) => request.requiredFeatures.includes(f))
  );
}

/**
 * Picks the fitting machine with a free slot and the lowest load per speed factor (integer
 * division, as Nix does); ties go to the faster machine, then the less loaded, then the first.
 * `currentLoads[i]` is the number of busy slots on `machines[i]` (missing means 0).
 */
export function chooseMachine(
  machines: readonly Machine[],
  request: BuildRequest,
  currentLoads: readonly number[] = [],
): MachineChoice {
  let rightType = false;
  let best: { index: number; machine: Machine; load: number } | undefined;
  for (let i = 0; i < machines.length; i++) {
    const m = machines[i]!;
    if (!machineFits(m, request)) continue;
    rightType = true;
    const load = Math.min(currentLoads[i] ?? 0, m.maxJobs);
    if (load >= m.maxJobs) continue;
    if (best === undefined || better(m, load, best.machine, best.load)) {
      best = { index: i, machine: m, load };
    }
  }
  if (best) return { kind: "chosen", ...best };
  return { kind: rightType ? "busy" : "unsuitable" };
}

function better(m: Machine, load: number, bestMachine: Machine, bestLoad: number): boolean {
  const score = Math.floor(load / Math.max(1, m.speedFactor));
  const bestScore = Math.floor(bestLoad / Math.max(1, bestMachine.speedFactor));
  if (score !== bestScore) return score < bestScore;
  if (m.speedFactor !== bestMachine.speedFactor) return m.speedFactor > bestMachine.speedFactor;
  return load < bestLoad;
}
