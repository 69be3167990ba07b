// A seeded random source for the fuzzers: the same seed gives the same requests,
// so a finding's reproducer is its seed and index (FUZZ_SEED, default 15).
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** mulberry32: a float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A version-4-shaped UUID from this source (crypto.randomUUID would make runs differ). */
  uuid(): string {
    const h = this.bytes(16).toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
  /** Flip, drop, insert or duplicate a few bytes of `b`. */
  mutate(b: Uint8Array, edits = 1 + this.int(4)): Buffer {
    let out = Buffer.from(b);
    for (let e = 0; e < edits; e++) {
      const at = out.length ? this.int(out.length) : 0;
      switch (this.int(4)) {
        case 0:
          if (out.length) out[at] ^= 1 << this.int(8);
          break;
        case 1:
          out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
          break;
        case 2:
          out = Buffer.concat([out.subarray(0, at), this.bytes(1 + this.int(8)), out.subarray(at)]);
          break;
        default:
          out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + 1 + this.int(16)), out.subarray(at)]);
      }
    }
    return out;
  }
}

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 15);
