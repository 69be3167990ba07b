// The request id (x-request-id): the one place that knows the header and the
// rule. It is decided once, where a request first enters the process (the
// HTTP span in http-server.ts, or the RPC server interceptor when no request
// of this process is in progress), kept in the request's context (context.ts
// requestStore, which handlers run in), and written into
// every outgoing call's headers so the next process keeps it.
import { randomUUID } from "node:crypto";
import { requestStore } from "./context.js";

export const REQUEST_ID_HEADER = "x-request-id";

const SANE = /^[\x21-\x7e]{1,200}$/;

/** The rule: a received id if it looks sane (printable ASCII, at most 200 characters), else a new UUID. */
export function requestIdFrom(received: string | readonly string[] | null | undefined): string {
  const v = typeof received === "string" ? received : received?.[0];
  return v && SANE.test(v) ? v : randomUUID();
}

/** The id of the request in progress (decided at the first entry), if any. */
export function currentRequestId(): string | undefined {
  return requestStore.getStore()?.requestId;
}

/** Write the current request's id into an outgoing call's headers, unless the caller set one. */
export function forwardRequestId(headers: Headers): void {
  const id = currentRequestId();
  if (id !== undefined && !headers.has(REQUEST_ID_HEADER)) headers.set(REQUEST_ID_HEADER, id);
}
