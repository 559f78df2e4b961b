// Long runs of synchronous file-system work (dumping or restoring a big tree whose data is
// already buffered) would otherwise keep the event loop from running timers and child-process
// events. A TimeSlicer says when to give it a turn.

import { setImmediate as nextMacrotask } from "node:timers/promises";

export class TimeSlicer {
  readonly #sliceMs: number;
  #deadline: number;

  constructor(sliceMs = 10) {
    this.#sliceMs = sliceMs;
    this.#deadline = performance.now() + sliceMs;
  }

  /** True when the current slice is used up: the caller should `await yieldToEventLoop()`. */
  due(): boolean {
    return performance.now() >= this.#deadline;
  }

  /** Let pending I/O callbacks and timers run, then start a new slice. */
  async yieldToEventLoop(): Promise<void> {
    await nextMacrotask();
    this.#deadline = performance.now() + this.#sliceMs;
  }
}
