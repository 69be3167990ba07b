// The per-client rate limit of service tokens (seed 002): each token carries
// its client's requests per minute (rate_limit claim; the built-in clients'
// are in services/auth/clients.ts). Counted here, per receiving instance, in
// fixed one-minute windows: no store round trip on the hot path, so N
// replicas admit up to N times the limit in total.
export interface ClientRateLimiter {
  /** Count one call; 0 when allowed, else the seconds until the window ends. */
  take(clientId: string, perMinute: number): number;
}

const WINDOW_MS = 60_000;
/** Clients tracked at most; the oldest window is dropped first (ids come from signed tokens, but stay bounded). */
const MAX_CLIENTS = 10_000;

export function clientRateLimiter(now: () => number = Date.now): ClientRateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    take(clientId, perMinute) {
      if (!(perMinute > 0)) return 0;
      const t = now();
      let w = windows.get(clientId);
      if (!w || t - w.start >= WINDOW_MS) {
        windows.delete(clientId);
        if (windows.size >= MAX_CLIENTS) windows.delete(windows.keys().next().value!);
        w = { start: t, count: 0 };
        windows.set(clientId, w);
      }
      if (w.count >= perMinute) return Math.max(1, Math.ceil((w.start + WINDOW_MS - t) / 1000));
      w.count++;
      return 0;
    },
  };
}
