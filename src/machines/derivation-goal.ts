// One derivation goal as an XState machine: Nix's DerivationGoal states, decisions only.
// Every effect (store queries, substitution, waiting on other goals, locks, the builder) is an
// invoked actor supplied through `provide`, so the same machine runs live, against fakes, and
// in replay from recorded actor outputs.

import { assign, setup } from "xstate";
import type { Derivation } from "../derivation/derivation.ts";
import { hintfmt } from "../protocol/nix-hint.ts";
import type {
  AnyDerivation,
  BuildAttempt,
  BuildMode,
  InputPathsInput,
  OutputStatus,
  QueryOutputsInput,
  RepairInput,
  RunBuildInput,
} from "./build-attempt.ts";
import type { GoalInput, GoalOutcome, InputsResult, WaiteesResult } from "./goal-types.ts";
import {
  allWantedValid,
  goalName,
  outcome,
  validOutputs,
  verdictOfAttempt,
} from "./goal-verdicts.ts";
import { injectedEffect } from "./injected-effect.ts";

interface GoalContext {
  input: GoalInput;
  drv: AnyDerivation | undefined;
  outputs: OutputStatus[];
  wantedOutputs: string[];
  needRestart: boolean;
  inputPaths: string[];
  inputDrvOutputs: Record<string, string>;
  /** Output substitutes failed only for want of their references: try again after the inputs. */
  retrySubstitution: boolean;
  retriedSubstitution: boolean;
  outcome: GoalOutcome | undefined;
}

export type GoalEvent = { type: "addWantedOutputs"; outputs: string[] };

export interface DrvInput {
  drvPath: string;
}
export interface SubstituteInput {
  drvPath: string;
  paths: string[];
  repair: boolean;
}
export interface RealiseInputsInput {
  drvPath: string;
  drv: AnyDerivation;
  mode: BuildMode;
  useSubstitutes: boolean;
}
export interface LockInput {
  goalId: number;
  drvPath: string;
  drv: AnyDerivation;
  outputs: OutputStatus[];
}

const inMemory = (c: GoalContext) => c.input.basicDrv !== undefined;
const nameOf = (c: GoalContext) =>
  goalName(
    c.input.drvPath,
    inMemory(c) ? [...(c.drv?.outputs.keys() ?? [])] : c.wantedOutputs,
    inMemory(c),
  );

/** Substitutes are tried unless disabled globally or by the derivation (`allowSubstitutes = ""`/"0"). */
function substitutesAllowed(c: GoalContext): boolean {
  const v = c.drv?.env.get("allowSubstitutes");
  const s = c.input.settings;
  return (
    s.useSubstitutes && s.haveSubstituters !== false && (v === undefined || (v !== "" && v !== "0"))
  );
}

const FINALS = {
  built: "Built",
  substituted: "Substituted",
  alreadyValid: "AlreadyValid",
  permanentFailure: "PermanentFailure",
  inputRejected: "InputRejected",
  outputRejected: "OutputRejected",
  transientFailure: "TransientFailure",
  cachedFailure: "CachedFailure",
  timedOut: "TimedOut",
  miscFailure: "MiscFailure",
  dependencyFailed: "DependencyFailed",
  logLimitExceeded: "LogLimitExceeded",
  notDeterministic: "NotDeterministic",
} as const;

/** The final state named after a status. */
export function finalStateOf(status: GoalOutcome["result"]["status"]): string {
  return Object.entries(FINALS).find(([, s]) => s === status)![0];
}

type FinalName = keyof typeof FINALS;
const finalStates = Object.fromEntries(
  Object.keys(FINALS).map((k) => [k, { type: "final" as const }]),
) as Record<FinalName, { type: "final" }>;

/** Guarded transitions to the final state matching `context.outcome` (set by the same transition). */
const toOutcomeFinal = Object.entries(FINALS).map(([state, status]) => ({
  guard: ({ context }: { context: GoalContext }) => context.outcome?.result.status === status,
  target: `#goal.${state}`,
}));

/** Every effect that throws ends the goal as a MiscFailure carrying its message. */
const ON_EFFECT_ERROR = { target: "#goal.miscFailure", actions: "failWithError" } as const;

export const derivationGoalMachine = setup({
  types: {
    context: {} as GoalContext,
    input: {} as GoalInput,
    output: {} as GoalOutcome,
    events: {} as GoalEvent,
  },
  actors: {
    queryDrvValid: injectedEffect<boolean, DrvInput>("queryDrvValid"),
    substitutePaths: injectedEffect<WaiteesResult, SubstituteInput>("substitutePaths"),
    readDerivation: injectedEffect<Derivation, DrvInput>("readDerivation"),
    queryOutputs: injectedEffect<OutputStatus[], QueryOutputsInput>("queryOutputs"),
    realiseInputs: injectedEffect<InputsResult, RealiseInputsInput>("realiseInputs"),
    computeInputPaths: injectedEffect<string[], InputPathsInput>("computeInputPaths"),
    lockOutputs: injectedEffect<OutputStatus[], LockInput>("lockOutputs"),
    runBuild: injectedEffect<BuildAttempt, RunBuildInput>("runBuild"),
    checkOutputClosure: injectedEffect<string[], RepairInput>("checkOutputClosure"),
    repairPaths: injectedEffect<WaiteesResult, SubstituteInput>("repairPaths"),
  },
  actions: {
    // An effect that threw: the goal fails with its message, as a Nix goal does on an Error.
    failWithError: assign(({ event }) => {
      const error = (event as unknown as { error: unknown }).error;
      return {
        outcome: outcome("MiscFailure", error instanceof Error ? error.message : String(error)),
      };
    }),
  },
}).createMachine({
  id: "goal",
  context: ({ input }) => ({
    input,
    drv: input.basicDrv,
    outputs: [],
    wantedOutputs: input.wantedOutputs,
    needRestart: false,
    inputPaths: [],
    inputDrvOutputs: {},
    retrySubstitution: false,
    retriedSubstitution: false,
    outcome: undefined,
  }),
  initial: "start",
  output: ({ context }) => context.outcome!,
  on: {
    addWantedOutputs: {
      actions: assign(({ context, event }) => {
        // Wanting all outputs (empty list) subsumes everything; otherwise add what is new.
        if (context.wantedOutputs.length === 0) return {};
        if (event.outputs.length === 0) return { wantedOutputs: [], needRestart: true };
        const added = event.outputs.filter((o) => !context.wantedOutputs.includes(o));
        return added.length === 0
          ? {}
          : { wantedOutputs: [...context.wantedOutputs, ...added], needRestart: true };
      }),
    },
  },
  states: {
    // A goal for an in-memory derivation (the serve protocol's BuildDerivation) has no .drv.
    start: {
      always: [
        { guard: ({ context }) => inMemory(context), target: "haveDerivation" },
        { target: "getDerivation" },
      ],
    },
    getDerivation: {
      initial: "checking",
      states: {
        checking: {
          invoke: {
            src: "queryDrvValid",
            input: ({ context }) => ({ drvPath: context.input.drvPath }),
            onDone: [
              {
                guard: ({ context, event }) => event.output && context.input.mode === "normal",
                target: "#goal.loadDerivation",
              },
              { target: "substituting" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        substituting: {
          invoke: {
            src: "substitutePaths",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              paths: [context.input.drvPath],
              repair: false,
            }),
            onDone: [
              {
                guard: ({ event }) => event.output.nrFailed > 0,
                target: "#goal.miscFailure",
                actions: assign(({ context }) => ({
                  outcome: outcome(
                    "MiscFailure",
                    `cannot build missing derivation '${context.input.drvPath}'`,
                  ),
                })),
              },
              { target: "#goal.loadDerivation" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    loadDerivation: {
      invoke: {
        src: "readDerivation",
        input: ({ context }) => ({ drvPath: context.input.drvPath }),
        onDone: { target: "haveDerivation", actions: assign({ drv: ({ event }) => event.output }) },
        onError: ON_EFFECT_ERROR,
      },
    },
    haveDerivation: {
      initial: "checking",
      states: {
        checking: {
          invoke: {
            src: "queryOutputs",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              drv: context.drv!,
              wantedOutputs: context.wantedOutputs,
              mode: context.input.mode,
              cacheFailures: context.input.settings.cacheFailures,
            }),
            onDone: [
              {
                guard: ({ context, event }) =>
                  allWantedValid(event.output) && context.input.mode === "normal",
                target: "#goal.alreadyValid",
                actions: assign(({ event }) => ({
                  outputs: event.output,
                  outcome: outcome("AlreadyValid", "", {
                    builtOutputs: validOutputs(event.output),
                  }),
                })),
              },
              {
                guard: ({ context, event }) =>
                  context.input.settings.cacheFailures &&
                  event.output.some((o) => o.wanted && !o.valid && o.failedBefore),
                target: "#goal.cachedFailure",
                actions: assign(({ context, event }) => ({
                  outputs: event.output,
                  outcome: outcome(
                    "CachedFailure",
                    `build of '${context.input.drvPath}' previously failed (output '${event.output.find((o) => o.failedBefore)!.path}' is in the failed-path cache; run 'nixstate failed clear' to retry)`,
                  ),
                })),
              },
              {
                guard: ({ context }) => substitutesAllowed(context),
                target: "substituting",
                actions: assign({ outputs: ({ event }) => event.output }),
              },
              {
                target: "#goal.outputsSubstituted",
                actions: assign({ outputs: ({ event }) => event.output }),
              },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        substituting: {
          invoke: {
            src: "substitutePaths",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              paths: context.outputs
                .filter((o) => o.wanted && (!o.valid || context.input.mode === "repair"))
                .map((o) => o.path),
              repair: context.input.mode === "repair",
            }),
            onDone: [
              {
                // Substituters that had the outputs but failed to deliver them: stop rather than
                // build, unless --fallback (missing substitutes only mean "build it").
                guard: ({ context, event }) =>
                  event.output.nrFailed >
                    event.output.nrNoSubstituters + event.output.nrIncompleteClosure &&
                  !context.input.settings.tryFallback,
                target: "#goal.transientFailure",
                actions: assign(({ context }) => ({
                  outcome: outcome(
                    "TransientFailure",
                    `some substitutes for the outputs of derivation '${context.input.drvPath}' failed (usually happens due to networking issues); try '--fallback' to build derivation from source `,
                  ),
                })),
              },
              {
                // Only holes in the substitutes' closures: build the inputs, then retry (as Nix;
                // a hole that is one of our own outputs would loop, hence the equality).
                target: "#goal.outputsSubstituted",
                actions: assign(({ event }) => ({
                  retrySubstitution:
                    event.output.nrIncompleteClosure > 0 &&
                    event.output.nrIncompleteClosure === event.output.nrFailed,
                })),
              },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    outputsSubstituted: {
      invoke: {
        src: "queryOutputs",
        input: ({ context }) => ({
          drvPath: context.input.drvPath,
          drv: context.drv!,
          wantedOutputs: context.wantedOutputs,
          mode: context.input.mode,
          cacheFailures: false,
        }),
        onDone: [
          {
            guard: ({ context }) => context.needRestart,
            target: "haveDerivation",
            actions: assign({ needRestart: false }),
          },
          {
            guard: ({ context, event }) =>
              context.input.mode === "normal" && allWantedValid(event.output),
            target: "substituted",
            actions: assign(({ event }) => ({
              outputs: event.output,
              outcome: outcome("Substituted", "", { builtOutputs: validOutputs(event.output) }),
            })),
          },
          {
            guard: ({ context, event }) =>
              context.input.mode === "repair" && allWantedValid(event.output),
            target: "repairClosure",
            actions: assign({ outputs: ({ event }) => event.output }),
          },
          {
            guard: ({ context, event }) =>
              context.input.mode === "check" && !allWantedValid(event.output),
            target: "miscFailure",
            actions: assign(({ context }) => ({
              outcome: outcome(
                "MiscFailure",
                `some outputs of '${context.input.drvPath}' are not valid, so checking is not possible`,
              ),
            })),
          },
          // Gave up on substitution: realise the inputs, then build.
          { target: "inputsRealised", actions: assign({ outputs: ({ event }) => event.output }) },
        ],
        onError: ON_EFFECT_ERROR,
      },
    },
    inputsRealised: {
      initial: "waiting",
      states: {
        waiting: {
          invoke: {
            src: "realiseInputs",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              drv: context.drv!,
              mode: context.input.mode,
              useSubstitutes: context.input.settings.useSubstitutes,
            }),
            onDone: [
              {
                guard: ({ event }) => event.output.missingSource !== undefined,
                target: "#goal.miscFailure",
                actions: assign(({ context, event }) => {
                  const hint = hintfmt`dependency '${event.output.missingSource!}' of '${context.input.drvPath}' does not exist, and substitution is disabled`;
                  // Nix throws this out of the whole build: its text is the error's, "error:" first.
                  return {
                    outcome: outcome("MiscFailure", hint, { errorThrown: true }),
                  };
                }),
              },
              {
                guard: ({ context, event }) => event.output.nrFailed > 0 && inMemory(context),
                target: "#goal.miscFailure",
                actions: assign(({ context }) => ({
                  outcome: outcome(
                    "MiscFailure",
                    `some dependencies of '${context.input.drvPath}' are missing`,
                  ),
                })),
              },
              {
                guard: ({ event }) => event.output.nrFailed > 0,
                target: "#goal.dependencyFailed",
                actions: assign(({ context, event }) => ({
                  outcome: outcome(
                    "DependencyFailed",
                    `${event.output.nrFailed} dependencies of derivation '${context.input.drvPath}' failed to build`,
                  ),
                })),
              },
              {
                guard: ({ context }) => context.retrySubstitution && !context.retriedSubstitution,
                target: "#goal.haveDerivation",
                actions: assign({ retriedSubstitution: true }),
              },
              {
                target: "closure",
                actions: assign({ inputDrvOutputs: ({ event }) => event.output.inputDrvOutputs }),
              },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        closure: {
          invoke: {
            src: "computeInputPaths",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              drv: context.drv!,
              inputDrvOutputs: context.inputDrvOutputs,
            }),
            onDone: {
              target: "#goal.tryToBuild",
              actions: assign({ inputPaths: ({ event }) => event.output }),
            },
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    tryToBuild: {
      // Waits for a build slot and the output locks, then re-checks validity: another process
      // may have built the outputs while we waited.
      invoke: {
        src: "lockOutputs",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          drvPath: context.input.drvPath,
          drv: context.drv!,
          outputs: context.outputs,
        }),
        onDone: [
          {
            // Repair and check rebuild valid outputs on purpose: only normal builds skip here.
            guard: ({ context, event }) =>
              context.input.mode === "normal" && allWantedValid(event.output),
            target: "alreadyValid",
            actions: assign(({ event }) => ({
              outputs: event.output,
              outcome: outcome("AlreadyValid", "", { builtOutputs: validOutputs(event.output) }),
            })),
          },
          { target: "buildDone", actions: assign({ outputs: ({ event }) => event.output }) },
        ],
        onError: ON_EFFECT_ERROR,
      },
    },
    buildDone: {
      invoke: {
        src: "runBuild",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          drvPath: context.input.drvPath,
          drv: context.drv!,
          outputs: context.outputs,
          inputPaths: context.inputPaths,
          mode: context.input.mode,
          goalName: nameOf(context),
        }),
        onDone: {
          target: "decided",
          actions: assign(({ context, event }) => ({
            outcome: verdictOfAttempt(
              event.output,
              context.drv!,
              context.input.drvPath,
              nameOf(context),
            ),
          })),
        },
        onError: ON_EFFECT_ERROR,
      },
    },
    // Routes to the final state named after the verdict reached in buildDone.
    decided: { always: toOutcomeFinal },
    repairClosure: {
      initial: "checking",
      states: {
        checking: {
          invoke: {
            src: "checkOutputClosure",
            input: ({ context }) => ({ drvPath: context.input.drvPath, outputs: context.outputs }),
            onDone: [
              {
                guard: ({ event }) => event.output.length === 0,
                target: "#goal.alreadyValid",
                actions: assign(({ context }) => ({
                  outcome: outcome("AlreadyValid", "", {
                    builtOutputs: validOutputs(context.outputs),
                  }),
                })),
              },
              {
                target: "#goal.closureRepaired",
                actions: assign({ inputPaths: ({ event }) => event.output }),
              },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    closureRepaired: {
      invoke: {
        src: "repairPaths",
        input: ({ context }) => ({
          drvPath: context.input.drvPath,
          paths: context.inputPaths,
          repair: true,
        }),
        onDone: [
          {
            guard: ({ event }) => event.output.nrFailed > 0,
            target: "miscFailure",
            actions: assign(({ context }) => ({
              outcome: outcome(
                "MiscFailure",
                `some paths in the output closure of derivation '${context.input.drvPath}' could not be repaired`,
              ),
            })),
          },
          {
            target: "alreadyValid",
            actions: assign(({ context }) => ({
              outcome: outcome("AlreadyValid", "", { builtOutputs: validOutputs(context.outputs) }),
            })),
          },
        ],
        onError: ON_EFFECT_ERROR,
      },
    },
    ...finalStates,
  },
});
