// Hand-built NARs shared by several test files.

import { directory, nar, regular, symlink } from "./hand-built-nar.ts";

/** A NAR exercising every node kind, nesting, an executable and a multi-chunk file. */
export const RICH_NAR = nar(
  directory([
    [".keep", regular("")],
    ["big", regular(Buffer.alloc(3000, 0x61))],
    ["bin", directory([["hi", regular("#!/bin/sh\necho hi\n", true)]])],
    ["empty-dir", directory([])],
    ["link", symlink("../target")],
    ["z", directory([["deeper", directory([["leaf", regular("x")]])]])],
  ]),
);
