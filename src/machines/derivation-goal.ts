// One derivation goal as an XState machine: Nix's DerivationGoal states, decisions only.
// Every effect (store queries, substitution, waiting on other goals, locks, the builder) is an
// invoked actor supplied through `provide`, so the same machine runs live, against fakes, and
// in replay from recorded actor outputs.

import { and, assign, not, type OutputFrom, setup } from "xstate";
import type { Derivation } from "../derivation/derivation.ts";
import type { BuildStatusName } from "../protocol/build-result.ts";
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

/** What queryOutputs is asked: the wanted outputs of the goal's derivation. */
const outputsQuery = (c: GoalContext, cacheFailures: boolean): QueryOutputsInput => ({
  drvPath: c.input.drvPath,
  drv: c.drv!,
  wantedOutputs: c.wantedOutputs,
  mode: c.input.mode,
  cacheFailures,
});

/** The effects a goal invokes, by the names the worker provides them under. */
const effects = {
  readValidDerivation: injectedEffect<Derivation | null, DrvInput>("readValidDerivation"),
  substitutePaths: injectedEffect<WaiteesResult, SubstituteInput>("substitutePaths"),
  readDerivation: injectedEffect<Derivation, DrvInput>("readDerivation"),
  queryOutputs: injectedEffect<OutputStatus[], QueryOutputsInput>("queryOutputs"),
  realiseInputs: injectedEffect<InputsResult, RealiseInputsInput>("realiseInputs"),
  computeInputPaths: injectedEffect<string[], InputPathsInput>("computeInputPaths"),
  lockOutputs: injectedEffect<OutputStatus[], LockInput>("lockOutputs"),
  runBuild: injectedEffect<BuildAttempt, RunBuildInput>("runBuild"),
  checkOutputClosure: injectedEffect<string[], RepairInput>("checkOutputClosure"),
  repairPaths: injectedEffect<WaiteesResult, SubstituteInput>("repairPaths"),
};
type Effect = keyof typeof effects;

/** The effects the machine invokes, as declared (their names and types). */
export { effects as derivationGoalEffects };

/**
 * Each invoke's id (the name its child actor, done and error events carry) → the effect it runs.
 * Ids say what the state does; one effect may serve several states (substitutePaths for the .drv
 * and for the outputs, queryOutputs before and after substituting).
 */
export const DERIVATION_GOAL_INVOKES = {
  loadValidDrv: "readValidDerivation",
  substituteDrv: "substitutePaths",
  readDrv: "readDerivation",
  checkOutputs: "queryOutputs",
  substituteOutputs: "substitutePaths",
  recheckOutputs: "queryOutputs",
  realiseInputs: "realiseInputs",
  computeInputPaths: "computeInputPaths",
  lockOutputs: "lockOutputs",
  runBuild: "runBuild",
  checkOutputClosure: "checkOutputClosure",
  repairClosure: "repairPaths",
} as const satisfies Record<string, Effect>;

/**
 * What effect `E` returned, read from the done event a guard or action runs on. Guards and actions
 * named in `setup` are typed for the machine's own events only, so each says which effects it
 * follows.
 */
const resultOf = <E extends Effect>(event: { type: string }) =>
  (event as unknown as { output: OutputFrom<(typeof effects)[E]> }).output;
/** Why an effect failed, from its error event. */
const errorOf = (event: { type: string }) => {
  const error = (event as unknown as { error: unknown }).error;
  return error instanceof Error ? error.message : String(error);
};
/** Some of the goals waited for (substitutions, inputs, repairs) failed. */
const someFailed = (r: WaiteesResult) => r.nrFailed > 0;

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
  guard: { type: "outcomeIs" as const, params: { status } },
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
  actors: effects,
  guards: {
    inMemoryDerivation: ({ context }) => inMemory(context),
    normalMode: ({ context }) => context.input.mode === "normal",
    repairMode: ({ context }) => context.input.mode === "repair",
    checkMode: ({ context }) => context.input.mode === "check",
    derivationLoaded: ({ event }) => resultOf<"readValidDerivation">(event) !== null,
    drvSubstitutionFailed: ({ event }) => someFailed(resultOf<"substitutePaths">(event)),
    allWantedOutputsValid: ({ event }) =>
      allWantedValid(resultOf<"queryOutputs" | "lockOutputs">(event)),
    /** The outputs as last checked (kept in context) are all valid. */
    allWantedOutputsKnownValid: ({ context }) => allWantedValid(context.outputs),
    failedBefore: ({ context, event }) =>
      context.input.settings.cacheFailures &&
      resultOf<"queryOutputs">(event).some((o) => o.wanted && !o.valid && o.failedBefore),
    substitutesAllowed: ({ context }) => substitutesAllowed(context),
    // Substituters that had the outputs but failed to deliver them: stop rather than build,
    // unless --fallback (missing substitutes only mean "build it").
    substitutesFailedWithoutFallback: ({ context, event }) => {
      const r = resultOf<"substitutePaths">(event);
      return (
        r.nrFailed > r.nrNoSubstituters + r.nrIncompleteClosure &&
        !context.input.settings.tryFallback
      );
    },
    needsRestart: ({ context }) => context.needRestart,
    missingInputSource: ({ event }) => resultOf<"realiseInputs">(event).missingSource !== undefined,
    inputsFailed: ({ event }) => someFailed(resultOf<"realiseInputs">(event)),
    shouldRetrySubstitution: ({ context }) =>
      context.retrySubstitution && !context.retriedSubstitution,
    outputClosureValid: ({ event }) => resultOf<"checkOutputClosure">(event).length === 0,
    repairFailed: ({ event }) => someFailed(resultOf<"repairPaths">(event)),
    outcomeIs: ({ context }, { status }: { status: BuildStatusName }) =>
      context.outcome?.result.status === status,
  },
  actions: {
    addWantedOutputs: assign(({ context, event }) => {
      // Wanting all outputs (empty list) subsumes everything; otherwise add what is new.
      if (context.wantedOutputs.length === 0) return {};
      if (event.outputs.length === 0) return { wantedOutputs: [], needRestart: true };
      const added = event.outputs.filter((o) => !context.wantedOutputs.includes(o));
      return added.length === 0
        ? {}
        : { wantedOutputs: [...context.wantedOutputs, ...added], needRestart: true };
    }),
    // An effect that threw: the goal fails with its message, as a Nix goal does on an Error.
    failWithError: assign(({ event }) => ({ outcome: outcome("MiscFailure", errorOf(event)) })),
    rememberDerivation: assign({
      drv: ({ event }) => resultOf<"readDerivation" | "readValidDerivation">(event)!,
    }),
    rememberOutputs: assign({
      outputs: ({ event }) => resultOf<"queryOutputs" | "lockOutputs">(event),
    }),
    // Only holes in the substitutes' closures: build the inputs, then retry (as Nix; a hole
    // that is one of our own outputs would loop, hence the equality).
    rememberRetrySubstitution: assign(({ event }) => {
      const r = resultOf<"substitutePaths">(event);
      return {
        retrySubstitution: r.nrIncompleteClosure > 0 && r.nrIncompleteClosure === r.nrFailed,
      };
    }),
    clearNeedRestart: assign({ needRestart: false }),
    markSubstitutionRetried: assign({ retriedSubstitution: true }),
    rememberInputDrvOutputs: assign({
      inputDrvOutputs: ({ event }) => resultOf<"realiseInputs">(event).inputDrvOutputs,
    }),
    rememberInputPaths: assign({ inputPaths: ({ event }) => resultOf<"computeInputPaths">(event) }),
    // The invalid paths of the output closure, kept where the repair reads its paths from.
    rememberPathsToRepair: assign({
      inputPaths: ({ event }) => resultOf<"checkOutputClosure">(event),
    }),
    // The conclusions below that report outputs read them from context: `rememberOutputs` runs
    // first in the same transition where they were just learned.
    concludeAlreadyValid: assign(({ context }) => ({
      outcome: outcome("AlreadyValid", "", { builtOutputs: validOutputs(context.outputs) }),
    })),
    concludeSubstituted: assign(({ context }) => ({
      outcome: outcome("Substituted", "", { builtOutputs: validOutputs(context.outputs) }),
    })),
    concludeCachedFailure: assign(({ context }) => ({
      outcome: outcome(
        "CachedFailure",
        `build of '${context.input.drvPath}' previously failed (output '${context.outputs.find((o) => o.failedBefore)!.path}' is in the failed-path cache; run 'nixstate failed clear' to retry)`,
      ),
    })),
    concludeMissingDerivation: assign(({ context }) => ({
      outcome: outcome("MiscFailure", `cannot build missing derivation '${context.input.drvPath}'`),
    })),
    concludeSubstitutesFailed: assign(({ context }) => ({
      outcome: outcome(
        "TransientFailure",
        `some substitutes for the outputs of derivation '${context.input.drvPath}' failed (usually happens due to networking issues); try '--fallback' to build derivation from source `,
      ),
    })),
    concludeCheckImpossible: assign(({ context }) => ({
      outcome: outcome(
        "MiscFailure",
        `some outputs of '${context.input.drvPath}' are not valid, so checking is not possible`,
      ),
    })),
    concludeMissingSource: assign(({ context, event }) => {
      const hint = hintfmt`dependency '${resultOf<"realiseInputs">(event).missingSource!}' of '${context.input.drvPath}' does not exist, and substitution is disabled`;
      // Nix throws this out of the whole build: its text is the error's, "error:" first.
      return { outcome: outcome("MiscFailure", hint, { errorThrown: true }) };
    }),
    concludeMissingDependencies: assign(({ context }) => ({
      outcome: outcome(
        "MiscFailure",
        `some dependencies of '${context.input.drvPath}' are missing`,
      ),
    })),
    concludeDependencyFailed: assign(({ context, event }) => ({
      outcome: outcome(
        "DependencyFailed",
        `${resultOf<"realiseInputs">(event).nrFailed} dependencies of derivation '${context.input.drvPath}' failed to build`,
      ),
    })),
    concludeBuild: assign(({ context, event }) => ({
      outcome: verdictOfAttempt(
        resultOf<"runBuild">(event),
        context.drv!,
        context.input.drvPath,
        nameOf(context),
      ),
    })),
    concludeRepairFailed: assign(({ context }) => ({
      outcome: outcome(
        "MiscFailure",
        `some paths in the output closure of derivation '${context.input.drvPath}' could not be repaired`,
      ),
    })),
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
    addWantedOutputs: { actions: "addWantedOutputs" },
  },
  states: {
    // A goal for an in-memory derivation (the serve protocol's BuildDerivation) has no .drv.
    // As Nix's getDerivation: in normal mode a valid .drv is loaded at once (Nix calls
    // loadDerivation without yielding); otherwise, and in the other modes always, it goes through
    // a substitution goal first.
    start: {
      always: [
        { guard: "inMemoryDerivation", target: "haveDerivation" },
        { guard: "normalMode", target: "getDerivation" },
        { target: "getDerivation.substituting" },
      ],
    },
    getDerivation: {
      initial: "loading",
      states: {
        loading: {
          invoke: {
            id: "loadValidDrv",
            src: "readValidDerivation",
            input: ({ context }) => ({ drvPath: context.input.drvPath }),
            onDone: [
              {
                guard: "derivationLoaded",
                target: "#goal.haveDerivation",
                actions: "rememberDerivation",
              },
              { target: "substituting" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        substituting: {
          invoke: {
            id: "substituteDrv",
            src: "substitutePaths",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              paths: [context.input.drvPath],
              repair: false,
            }),
            onDone: [
              {
                guard: "drvSubstitutionFailed",
                target: "#goal.miscFailure",
                actions: "concludeMissingDerivation",
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
        id: "readDrv",
        src: "readDerivation",
        input: ({ context }) => ({ drvPath: context.input.drvPath }),
        onDone: { target: "haveDerivation", actions: "rememberDerivation" },
        onError: ON_EFFECT_ERROR,
      },
    },
    haveDerivation: {
      initial: "checking",
      states: {
        checking: {
          invoke: {
            id: "checkOutputs",
            src: "queryOutputs",
            input: ({ context }) => outputsQuery(context, context.input.settings.cacheFailures),
            onDone: [
              {
                guard: and(["allWantedOutputsValid", "normalMode"]),
                target: "#goal.alreadyValid",
                actions: ["rememberOutputs", "concludeAlreadyValid"],
              },
              {
                guard: "failedBefore",
                target: "#goal.cachedFailure",
                actions: ["rememberOutputs", "concludeCachedFailure"],
              },
              { guard: "substitutesAllowed", target: "substituting", actions: "rememberOutputs" },
              { target: "#goal.outputsSubstituted.unchanged", actions: "rememberOutputs" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        substituting: {
          invoke: {
            id: "substituteOutputs",
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
                guard: "substitutesFailedWithoutFallback",
                target: "#goal.transientFailure",
                actions: "concludeSubstitutesFailed",
              },
              { target: "#goal.outputsSubstituted", actions: "rememberRetrySubstitution" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    outputsSubstituted: {
      initial: "rechecking",
      states: {
        rechecking: {
          invoke: {
            id: "recheckOutputs",
            src: "queryOutputs",
            input: ({ context }) => outputsQuery(context, false),
            onDone: [
              {
                guard: "needsRestart",
                target: "#goal.haveDerivation",
                actions: "clearNeedRestart",
              },
              {
                guard: and(["normalMode", "allWantedOutputsValid"]),
                target: "#goal.substituted",
                actions: ["rememberOutputs", "concludeSubstituted"],
              },
              {
                guard: and(["repairMode", "allWantedOutputsValid"]),
                target: "#goal.repairClosure",
                actions: "rememberOutputs",
              },
              {
                guard: and(["checkMode", not("allWantedOutputsValid")]),
                target: "#goal.miscFailure",
                actions: "concludeCheckImpossible",
              },
              // Gave up on substitution: realise the inputs, then build.
              { target: "#goal.inputsRealised", actions: "rememberOutputs" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        // No substitution ran: the outputs were checked just now. Nix calls outputsSubstituted
        // at once and checks again; nothing but another process can have changed them since,
        // and tryToBuild checks again under the locks.
        unchanged: {
          always: [
            { guard: "needsRestart", target: "#goal.haveDerivation", actions: "clearNeedRestart" },
            {
              guard: and(["repairMode", "allWantedOutputsKnownValid"]),
              target: "#goal.repairClosure",
            },
            {
              guard: and(["checkMode", not("allWantedOutputsKnownValid")]),
              target: "#goal.miscFailure",
              actions: "concludeCheckImpossible",
            },
            { target: "#goal.inputsRealised" },
          ],
        },
      },
    },
    inputsRealised: {
      initial: "waiting",
      states: {
        waiting: {
          invoke: {
            id: "realiseInputs",
            src: "realiseInputs",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              drv: context.drv!,
              mode: context.input.mode,
              useSubstitutes: context.input.settings.useSubstitutes,
            }),
            onDone: [
              {
                guard: "missingInputSource",
                target: "#goal.miscFailure",
                actions: "concludeMissingSource",
              },
              {
                guard: and(["inputsFailed", "inMemoryDerivation"]),
                target: "#goal.miscFailure",
                actions: "concludeMissingDependencies",
              },
              {
                guard: "inputsFailed",
                target: "#goal.dependencyFailed",
                actions: "concludeDependencyFailed",
              },
              {
                guard: "shouldRetrySubstitution",
                target: "#goal.haveDerivation",
                actions: "markSubstitutionRetried",
              },
              { target: "closure", actions: "rememberInputDrvOutputs" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
        closure: {
          invoke: {
            id: "computeInputPaths",
            src: "computeInputPaths",
            input: ({ context }) => ({
              drvPath: context.input.drvPath,
              drv: context.drv!,
              inputDrvOutputs: context.inputDrvOutputs,
            }),
            onDone: { target: "#goal.tryToBuild", actions: "rememberInputPaths" },
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    tryToBuild: {
      // Takes the output locks and a build slot, then re-checks validity: another process
      // may have built the outputs while we waited.
      invoke: {
        id: "lockOutputs",
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
            guard: and(["normalMode", "allWantedOutputsValid"]),
            target: "alreadyValid",
            actions: ["rememberOutputs", "concludeAlreadyValid"],
          },
          { target: "buildDone", actions: "rememberOutputs" },
        ],
        onError: ON_EFFECT_ERROR,
      },
    },
    buildDone: {
      invoke: {
        id: "runBuild",
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
        onDone: { target: "decided", actions: "concludeBuild" },
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
            id: "checkOutputClosure",
            src: "checkOutputClosure",
            input: ({ context }) => ({ drvPath: context.input.drvPath, outputs: context.outputs }),
            onDone: [
              {
                guard: "outputClosureValid",
                target: "#goal.alreadyValid",
                actions: "concludeAlreadyValid",
              },
              { target: "#goal.closureRepaired", actions: "rememberPathsToRepair" },
            ],
            onError: ON_EFFECT_ERROR,
          },
        },
      },
    },
    closureRepaired: {
      invoke: {
        id: "repairClosure",
        src: "repairPaths",
        input: ({ context }) => ({
          drvPath: context.input.drvPath,
          paths: context.inputPaths,
          repair: true,
        }),
        onDone: [
          { guard: "repairFailed", target: "miscFailure", actions: "concludeRepairFailed" },
          { target: "alreadyValid", actions: "concludeAlreadyValid" },
        ],
        onError: ON_EFFECT_ERROR,
      },
    },
    ...finalStates,
  },
});
