// Its own module so that the CLI's entry can print it without loading the run log.

/** Recorded with every run: a replay needs the goal machines of the version that recorded it. */
export const NIXSTATE_VERSION = "0.2.0";
