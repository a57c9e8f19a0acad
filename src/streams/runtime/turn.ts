/**
 * A turn in a per-partition order: passed once its holder ran, waited on by the next holder.
 * Cheaper than a promise per record: nothing is allocated to wait on a turn already passed,
 * which is the common case (a batch's records complete together, in order).
 */
export class Turn {
  #passed = false;
  #waiters: (() => void)[] | undefined;

  /** A turn that was never held (no earlier record). */
  static readonly FREE: Turn = Turn.#passedTurn();

  static #passedTurn(): Turn {
    const t = new Turn();
    t.#passed = true;
    return t;
  }

  get passed(): boolean {
    return this.#passed;
  }

  /** Passes the turn on: whoever waits goes. */
  pass(): void {
    if (this.#passed) return;
    this.#passed = true;
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters) for (const w of waiters) w();
  }

  /** Passes the turn on once `before` was passed (a holder that failed before its turn came keeps the order). */
  passAfter(before: Turn): void {
    if (before.#passed) this.pass();
    else (before.#waiters ??= []).push(() => this.pass());
  }

  /** Undefined when the turn was passed; else a promise settled when it is. */
  wait(): Promise<void> | undefined {
    if (this.#passed) return undefined;
    return new Promise<void>((resolve) => {
      (this.#waiters ??= []).push(resolve);
    });
  }
}
