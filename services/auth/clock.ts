// The auth service's notion of "now" for lockouts, refresh-token lifetimes,
// the key schedule and cleanup. Production uses the wall clock; tests advance
// it to cross minutes or days without sleeping. Token iat/exp always use the
// wall clock, because every verifier checks them against its own.
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export class AdjustableClock implements Clock {
  private offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  /** Tests only: move time forward. */
  advance(ms: number): void {
    this.offsetMs += ms;
  }
  date(): Date {
    return new Date(this.now());
  }
}
