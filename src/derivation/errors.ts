/** A .drv file that is not valid ATerm: names the byte offset and what was expected there. */
export class AtermParseError extends Error {
  override name = "AtermParseError";
  readonly offset: number;
  readonly expected: string;

  constructor(expected: string, offset: number, found: string, source?: string) {
    super(
      `${source ? `${source}: ` : ""}invalid derivation at byte ${offset}: expected ${expected}, found ${found}`,
    );
    this.offset = offset;
    this.expected = expected;
  }
}

/** A derivation that parses but is not one Nix 2.8 can use (wrong paths, newer features…). */
export class DerivationError extends Error {
  override name = "DerivationError";
}
