// Machines declare the effects they need as placeholders; the worker (live), tests (fakes) and
// replay (recorded outputs) supply the real ones through `machine.provide({ actors })`.
import { fromPromise } from "xstate";

/** A promise actor that must be provided; run as declared, it fails naming itself. */
export function injectedEffect<TOut, TIn>(name: string) {
  return fromPromise<TOut, TIn>(async () => {
    throw new Error(`goal effect '${name}' was not provided`);
  });
}
