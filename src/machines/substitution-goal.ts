// One substitution goal as an XState machine: Nix's PathSubstitutionGoal states, decisions only.
// Making one store path valid by copying it from a substituter: already valid? → for each
// substituter in order: does it have the path? → realise its references first → take the path's
// lock (and look again: another process may have substituted it meanwhile) → fetch and import
// the NAR. Every effect is an invoked actor supplied through `provide` (see worker.ts).

import { and, assign, not, type OutputFrom, setup } from "xstate";
import type { PathInfoInput } from "../store/path-info.ts";
import type { SubstitutionOutcome, WaiteesResult } from "./goal-types.ts";
import { injectedEffect } from "./injected-effect.ts";
import type { ImportResult } from "./worker-effects.ts";

export interface SubstitutionGoalInput {
  /** The worker's id for this goal, passed to effects that hold per-goal resources. */
  goalId: number;
  path: string;
  /** Substitute even if the path is valid (its contents are corrupt). */
  repair: boolean;
  /** Names of the substituters to try, in order; empty when substitution is off. */
  substituters: readonly string[];
  /** A substituter that cannot be queried is skipped instead of failing the goal (`--fallback`). */
  tryFallback: boolean;
}

/** The final states, one per way a substitution ends. */
export type SubstitutionStatus =
  | "alreadyValid"
  | "substituted"
  | "noSubstituters"
  | "failed"
  | "incompleteClosure";

export interface SubstitutionGoalOutcome {
  status: SubstitutionStatus;
  /** Nix's message for the failure; empty on success. */
  message: string;
  /** What went wrong with substituters that were tried, in order (for the log). */
  errors: string[];
}

export interface PathInput {
  path: string;
}
export interface QueryInfoInput {
  path: string;
  /** Index into the goal's substituters. */
  substituter: number;
}
export interface ReferencesInput {
  goalId: number;
  path: string;
  /** References other than the path itself. */
  references: string[];
}
export interface LockPathInput {
  goalId: number;
  path: string;
}
export interface ImportInput {
  goalId: number;
  substituter: number;
  info: PathInfoInput;
  repair: boolean;
}

interface SubstitutionContext {
  input: SubstitutionGoalInput;
  /** The next substituter to try. */
  next: number;
  /** The substituter being tried. */
  current: number;
  info: PathInfoInput | undefined;
  /** A substituter had the path but failed to deliver it. */
  substituterFailed: boolean;
  errors: string[];
  outcome: SubstitutionGoalOutcome | undefined;
}

const subName = (c: SubstitutionContext) => c.input.substituters[c.current] ?? `#${c.current}`;
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
const done = (c: SubstitutionContext, status: SubstitutionStatus, message = "") => ({
  outcome: { status, message, errors: c.errors },
});

/** How waiters count a finished substitution goal. */
export function substitutionOutcomeOf(status: SubstitutionStatus): SubstitutionOutcome {
  return status === "alreadyValid" ? "substituted" : status;
}

/** The effects a substitution goal invokes, by the names the worker provides them under. */
const effects = {
  queryValid: injectedEffect<boolean, PathInput>("queryValid"),
  queryPathInfo: injectedEffect<PathInfoInput | undefined, QueryInfoInput>("queryPathInfo"),
  realiseReferences: injectedEffect<WaiteesResult, ReferencesInput>("realiseReferences"),
  lockPath: injectedEffect<boolean, LockPathInput>("lockPath"),
  importSubstitute: injectedEffect<ImportResult, ImportInput>("importSubstitute"),
};
type Effect = keyof typeof effects;

/** The effects the machine invokes, as declared (their names and types). */
export { effects as substitutionGoalEffects };

/** Each invoke's id (the name its child actor, done and error events carry) → the effect it runs. */
export const SUBSTITUTION_GOAL_INVOKES = {
  checkPathValid: "queryValid",
  askSubstituter: "queryPathInfo",
  realiseReferences: "realiseReferences",
  lockPath: "lockPath",
  importNar: "importSubstitute",
} as const satisfies Record<string, Effect>;

/**
 * What effect `E` returned, read from the done event a guard or action runs on. Guards and actions
 * named in `setup` are typed for the machine's own events only, so each says which effects it
 * follows.
 */
const resultOf = <E extends Effect>(event: { type: string }) =>
  (event as unknown as { output: OutputFrom<(typeof effects)[E]> }).output;
/** Why an effect failed, from its error event. */
const errorOf = (event: { type: string }) =>
  errorText((event as unknown as { error: unknown }).error);
/** The errors so far, with one more about the substituter being tried. */
const withError = (c: SubstitutionContext, error: string) => [
  ...c.errors,
  `${subName(c)}: ${error}`,
];

export const substitutionGoalMachine = setup({
  types: {
    context: {} as SubstitutionContext,
    input: {} as SubstitutionGoalInput,
    output: {} as SubstitutionGoalOutcome,
  },
  actors: effects,
  guards: {
    pathValid: ({ event }) => resultOf<"queryValid" | "lockPath">(event),
    repairing: ({ context }) => context.input.repair,
    substitutersExhausted: ({ context }) => context.next >= context.input.substituters.length,
    someSubstituterFailed: ({ context }) => context.substituterFailed,
    substituterLacksPath: ({ event }) => resultOf<"queryPathInfo">(event) === undefined,
    substituterGaveWrongPath: ({ context, event }) =>
      resultOf<"queryPathInfo">(event)!.path !== context.input.path,
    fallbackAllowed: ({ context }) => context.input.tryFallback,
    // A reference no substituter had, or whose own closure was incomplete: this path's closure is
    // incomplete too, which waiters count apart from a substituter failing.
    referencesUnavailable: ({ event }) => {
      const r = resultOf<"realiseReferences">(event);
      return r.nrFailed > 0 && (r.nrNoSubstituters > 0 || r.nrIncompleteClosure > 0);
    },
    referencesFailed: ({ event }) => resultOf<"realiseReferences">(event).nrFailed > 0,
    narGone: ({ event }) => resultOf<"importSubstitute">(event) === "gone",
  },
  actions: {
    // An effect outside the substituters threw (the store, the worker): the goal fails.
    failWithError: assign(({ context, event }) => done(context, "failed", errorOf(event))),
    pickNextSubstituter: assign(({ context }) => ({
      current: context.next,
      next: context.next + 1,
      info: undefined,
    })),
    rememberPathInfo: assign({ info: ({ event }) => resultOf<"queryPathInfo">(event) }),
    noteWrongPath: assign(({ context, event }) => ({
      errors: [
        ...context.errors,
        `asked '${subName(context)}' for '${context.input.path}' but got '${resultOf<"queryPathInfo">(event)!.path}'`,
      ],
    })),
    noteQueryError: assign(({ context, event }) => ({
      errors: withError(context, errorOf(event)),
    })),
    noteNarGone: assign(({ context }) => ({
      errors: withError(context, `the NAR of '${context.input.path}' is gone`),
    })),
    noteSubstituterFailed: assign(({ context, event }) => ({
      substituterFailed: true,
      errors: withError(context, errorOf(event)),
    })),
    concludeAlreadyValid: assign(({ context }) => done(context, "alreadyValid")),
    concludeSubstituted: assign(({ context }) => done(context, "substituted")),
    // Whether running out of substituters is a failure is decided by the transition.
    concludeNoSubstituter: assign(
      ({ context }, { status }: { status: "noSubstituters" | "failed" }) =>
        done(
          context,
          status,
          `path '${context.input.path}' is required, but there is no substituter that can build it`,
        ),
    ),
    concludeQueryFailed: assign(({ context, event }) =>
      done(
        context,
        "failed",
        `cannot query substituter '${subName(context)}' about '${context.input.path}': ${errorOf(event)}`,
      ),
    ),
    concludeReferencesUnrealised: assign(
      ({ context }, { status }: { status: "incompleteClosure" | "failed" }) =>
        done(
          context,
          status,
          `some references of path '${context.input.path}' could not be realised`,
        ),
    ),
  },
}).createMachine({
  id: "substitution",
  context: ({ input }) => ({
    input,
    next: 0,
    current: -1,
    info: undefined,
    substituterFailed: false,
    errors: [],
    outcome: undefined,
  }),
  initial: "init",
  output: ({ context }) => context.outcome!,
  states: {
    init: {
      invoke: {
        id: "checkPathValid",
        src: "queryValid",
        input: ({ context }) => ({ path: context.input.path }),
        onDone: [
          {
            guard: and(["pathValid", not("repairing")]),
            target: "alreadyValid",
            actions: "concludeAlreadyValid",
          },
          { target: "tryNext" },
        ],
        onError: { target: "failed", actions: "failWithError" },
      },
    },
    // Picks the next substituter and asks it about the path. Choosing takes no time, so the
    // worker's state events show tryNext only while a substituter is being asked.
    tryNext: {
      initial: "choosing",
      states: {
        choosing: {
          always: [
            // None left. Not a failure if no substituter had it: the caller should just build.
            {
              guard: and(["substitutersExhausted", not("someSubstituterFailed")]),
              target: "#substitution.noSubstituters",
              actions: { type: "concludeNoSubstituter", params: { status: "noSubstituters" } },
            },
            {
              guard: "substitutersExhausted",
              target: "#substitution.failed",
              actions: { type: "concludeNoSubstituter", params: { status: "failed" } },
            },
            { target: "querying", actions: "pickNextSubstituter" },
          ],
        },
        querying: {
          invoke: {
            id: "askSubstituter",
            src: "queryPathInfo",
            input: ({ context }) => ({ path: context.input.path, substituter: context.current }),
            onDone: [
              { guard: "substituterLacksPath", target: "choosing" },
              {
                guard: "substituterGaveWrongPath",
                target: "choosing",
                actions: "noteWrongPath",
              },
              { target: "#substitution.referencesValid", actions: "rememberPathInfo" },
            ],
            onError: [
              { guard: "fallbackAllowed", target: "choosing", actions: "noteQueryError" },
              { target: "#substitution.failed", actions: "concludeQueryFailed" },
            ],
          },
        },
      },
    },
    // To keep the closure invariant, the references are realised first.
    referencesValid: {
      invoke: {
        id: "realiseReferences",
        src: "realiseReferences",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          path: context.input.path,
          references: (context.info!.references ?? []).filter((r) => r !== context.input.path),
        }),
        onDone: [
          {
            guard: "referencesUnavailable",
            target: "incompleteClosure",
            actions: {
              type: "concludeReferencesUnrealised",
              params: { status: "incompleteClosure" },
            },
          },
          {
            guard: "referencesFailed",
            target: "failed",
            actions: { type: "concludeReferencesUnrealised", params: { status: "failed" } },
          },
          { target: "tryToRun" },
        ],
        onError: { target: "failed", actions: "failWithError" },
      },
    },
    // Waits for a slot and the path's lock, then looks again: another process may have
    // substituted the path while we waited.
    tryToRun: {
      invoke: {
        id: "lockPath",
        src: "lockPath",
        input: ({ context }) => ({ goalId: context.input.goalId, path: context.input.path }),
        onDone: [
          {
            guard: and(["pathValid", not("repairing")]),
            target: "alreadyValid",
            actions: "concludeAlreadyValid",
          },
          { target: "finished" },
        ],
        onError: { target: "failed", actions: "failWithError" },
      },
    },
    // Nix's state while the copy runs; its end decides: done, or the next substituter.
    finished: {
      invoke: {
        id: "importNar",
        src: "importSubstitute",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          substituter: context.current,
          info: context.info!,
          repair: context.input.repair,
        }),
        onDone: [
          {
            guard: "narGone",
            // A vanished substitute is as if it never existed: not a substituter failure.
            target: "tryNext",
            actions: "noteNarGone",
          },
          { target: "substituted", actions: "concludeSubstituted" },
        ],
        onError: { target: "tryNext", actions: "noteSubstituterFailed" },
      },
    },
    alreadyValid: { type: "final" },
    substituted: { type: "final" },
    noSubstituters: { type: "final" },
    failed: { type: "final" },
    incompleteClosure: { type: "final" },
  },
});
