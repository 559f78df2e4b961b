// One substitution goal as an XState machine: Nix's PathSubstitutionGoal states, decisions only.
// Making one store path valid by copying it from a substituter: already valid? → for each
// substituter in order: does it have the path? → realise its references first → take the path's
// lock (and look again: another process may have substituted it meanwhile) → fetch and import
// the NAR. Every effect is an invoked actor supplied through `provide` (see worker.ts).

import { assign, setup } from "xstate";
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

export const substitutionGoalMachine = setup({
  types: {
    context: {} as SubstitutionContext,
    input: {} as SubstitutionGoalInput,
    output: {} as SubstitutionGoalOutcome,
  },
  actors: {
    queryValid: injectedEffect<boolean, PathInput>("queryValid"),
    queryPathInfo: injectedEffect<PathInfoInput | undefined, QueryInfoInput>("queryPathInfo"),
    realiseReferences: injectedEffect<WaiteesResult, ReferencesInput>("realiseReferences"),
    lockPath: injectedEffect<boolean, LockPathInput>("lockPath"),
    importSubstitute: injectedEffect<ImportResult, ImportInput>("importSubstitute"),
  },
  actions: {
    // An effect outside the substituters threw (the store, the worker): the goal fails.
    failWithError: assign(({ context, event }) => {
      const error = (event as unknown as { error: unknown }).error;
      return done(context, "failed", errorText(error));
    }),
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
        src: "queryValid",
        input: ({ context }) => ({ path: context.input.path }),
        onDone: [
          {
            guard: ({ context, event }) => event.output && !context.input.repair,
            target: "alreadyValid",
            actions: assign(({ context }) => done(context, "alreadyValid")),
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
              guard: ({ context }) =>
                context.next >= context.input.substituters.length && !context.substituterFailed,
              target: "#substitution.noSubstituters",
              actions: assign(({ context }) =>
                done(
                  context,
                  "noSubstituters",
                  `path '${context.input.path}' is required, but there is no substituter that can build it`,
                ),
              ),
            },
            {
              guard: ({ context }) => context.next >= context.input.substituters.length,
              target: "#substitution.failed",
              actions: assign(({ context }) =>
                done(
                  context,
                  "failed",
                  `path '${context.input.path}' is required, but there is no substituter that can build it`,
                ),
              ),
            },
            {
              target: "querying",
              actions: assign(({ context }) => ({
                current: context.next,
                next: context.next + 1,
                info: undefined,
              })),
            },
          ],
        },
        querying: {
          invoke: {
            src: "queryPathInfo",
            input: ({ context }) => ({ path: context.input.path, substituter: context.current }),
            onDone: [
              { guard: ({ event }) => event.output === undefined, target: "choosing" },
              {
                guard: ({ context, event }) => event.output!.path !== context.input.path,
                target: "choosing",
                actions: assign(({ context, event }) => ({
                  errors: [
                    ...context.errors,
                    `asked '${subName(context)}' for '${context.input.path}' but got '${event.output!.path}'`,
                  ],
                })),
              },
              {
                target: "#substitution.referencesValid",
                actions: assign({ info: ({ event }) => event.output }),
              },
            ],
            onError: [
              {
                guard: ({ context }) => context.input.tryFallback,
                target: "choosing",
                actions: assign(({ context, event }) => ({
                  errors: [...context.errors, `${subName(context)}: ${errorText(event.error)}`],
                })),
              },
              {
                target: "#substitution.failed",
                actions: assign(({ context, event }) =>
                  done(
                    context,
                    "failed",
                    `cannot query substituter '${subName(context)}' about '${context.input.path}': ${errorText(event.error)}`,
                  ),
                ),
              },
            ],
          },
        },
      },
    },
    // To keep the closure invariant, the references are realised first.
    referencesValid: {
      invoke: {
        src: "realiseReferences",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          path: context.input.path,
          references: (context.info!.references ?? []).filter((r) => r !== context.input.path),
        }),
        onDone: [
          {
            guard: ({ event }) =>
              event.output.nrFailed > 0 &&
              (event.output.nrNoSubstituters > 0 || event.output.nrIncompleteClosure > 0),
            target: "incompleteClosure",
            actions: assign(({ context }) =>
              done(
                context,
                "incompleteClosure",
                `some references of path '${context.input.path}' could not be realised`,
              ),
            ),
          },
          {
            guard: ({ event }) => event.output.nrFailed > 0,
            target: "failed",
            actions: assign(({ context }) =>
              done(
                context,
                "failed",
                `some references of path '${context.input.path}' could not be realised`,
              ),
            ),
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
        src: "lockPath",
        input: ({ context }) => ({ goalId: context.input.goalId, path: context.input.path }),
        onDone: [
          {
            guard: ({ context, event }) => event.output && !context.input.repair,
            target: "alreadyValid",
            actions: assign(({ context }) => done(context, "alreadyValid")),
          },
          { target: "finished" },
        ],
        onError: { target: "failed", actions: "failWithError" },
      },
    },
    // Nix's state while the copy runs; its end decides: done, or the next substituter.
    finished: {
      invoke: {
        src: "importSubstitute",
        input: ({ context }) => ({
          goalId: context.input.goalId,
          substituter: context.current,
          info: context.info!,
          repair: context.input.repair,
        }),
        onDone: [
          {
            guard: ({ event }) => event.output === "gone",
            // A vanished substitute is as if it never existed: not a substituter failure.
            target: "tryNext",
            actions: assign(({ context }) => ({
              errors: [
                ...context.errors,
                `${subName(context)}: the NAR of '${context.input.path}' is gone`,
              ],
            })),
          },
          { target: "substituted", actions: assign(({ context }) => done(context, "substituted")) },
        ],
        onError: {
          target: "tryNext",
          actions: assign(({ context, event }) => ({
            substituterFailed: true,
            errors: [...context.errors, `${subName(context)}: ${errorText(event.error)}`],
          })),
        },
      },
    },
    alreadyValid: { type: "final" },
    substituted: { type: "final" },
    noSubstituters: { type: "final" },
    failed: { type: "final" },
    incompleteClosure: { type: "final" },
  },
});
