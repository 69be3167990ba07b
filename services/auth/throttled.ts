// The answer to a login (or password check) refused by a throttle:
// RESOURCE_EXHAUSTED (HTTP 429) with Retry-After in seconds. One message
// whatever the scope and whether the account exists.
import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "../../platform/errors.js";

export const THROTTLED = "too many failed sign-in attempts; try again later";

export const retrySeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function throttledError(retryAfterMs: number): ConnectError {
  return new ConnectError(THROTTLED, Code.ResourceExhausted, new Headers({ "retry-after": String(retrySeconds(retryAfterMs)) }));
}

/**
 * Run `fn`; a throttled refusal's Retry-After goes out as a response header
 * instead of in the error's trailers: Envoy's JSON transcoder passes headers
 * on to the REST answer but drops trailer metadata.
 */
export async function withRetryAfter<T>(ctx: HandlerContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const retry = err instanceof ConnectError && err.code === Code.ResourceExhausted ? err.metadata.get("retry-after") : null;
    if (retry) {
      // Moved, not copied: a client merging headers and trailers would see it twice.
      ctx.responseHeader.set("retry-after", retry);
      (err as ConnectError).metadata.delete("retry-after");
    }
    throw err;
  }
}
