// A builder's output cut into log lines as Nix 2.8's worker cuts it (handleChildOutput): `\n`
// ends a line, `\r` moves back to its start so that what follows overwrites it ("abc\rX" is
// "Xbc"), and an unfinished last line counts once the output ends. Bytes are kept until a line
// is complete, so a character split between two chunks is decoded whole (UTF-8; invalid bytes
// become U+FFFD).

export class LogLineSplitter {
  private line = Buffer.alloc(256);
  /** Bytes of the current line. */
  private length = 0;
  /** Where the next byte goes (before `length` after a `\r`). */
  private pos = 0;

  /** The lines this chunk completes, in order. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c !== 0x0a && c !== 0x0d) continue;
      this.append(chunk, start, i);
      start = i + 1;
      if (c === 0x0d) this.pos = 0;
      else lines.push(this.take());
    }
    this.append(chunk, start, chunk.length);
    return lines;
  }

  /** The output has ended: its unfinished last line, if it has one. */
  end(): string[] {
    return this.length > 0 ? [this.take()] : [];
  }

  private append(chunk: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n === 0) return;
    const need = this.pos + n;
    if (need > this.line.length) {
      const bigger = Buffer.alloc(Math.max(need, this.line.length * 2));
      this.line.copy(bigger, 0, 0, this.length);
      this.line = bigger;
    }
    this.line.set(chunk.subarray(from, to), this.pos);
    this.pos = need;
    if (need > this.length) this.length = need;
  }

  private take(): string {
    const s = this.line.toString("utf8", 0, this.length);
    this.length = 0;
    this.pos = 0;
    return s;
  }
}

/** Cuts chunks into lines and hands each non-empty batch to `emit`; `end` hands the last line. */
export class LogLineSink {
  private readonly splitter = new LogLineSplitter();

  constructor(private readonly emit: (lines: string[]) => void) {}

  readonly push = (chunk: Uint8Array): void => {
    const lines = this.splitter.push(chunk);
    if (lines.length > 0) this.emit(lines);
  };

  end(): void {
    const last = this.splitter.end();
    if (last.length > 0) this.emit(last);
  }
}
