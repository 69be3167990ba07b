// Pacing of Register's two paths. Both hash the password; a new email then
// creates the account and its profile (a few database writes and a call to
// the user service), an existing one does not. So that the answer's timing
// does not tell them apart, the existing-email path waits about as long as
// creating an account has recently taken here: a moving average of the
// measured times, with the same spread (a random draw from the recent ones).

const SAMPLES = 32;

export class CreationPace {
  private readonly recent: number[] = [];

  constructor(private readonly initialMs = 20) {}

  /** Record how long creating an account took (ms). */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > SAMPLES) this.recent.shift();
  }

  /** How long the existing-email path should wait: one of the recent creation times. */
  nextWaitMs(): number {
    if (this.recent.length === 0) return this.initialMs;
    return this.recent[Math.floor(Math.random() * this.recent.length)];
  }

  wait(): Promise<void> {
    const ms = this.nextWaitMs();
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
