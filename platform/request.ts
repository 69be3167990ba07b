// Facts about the incoming request that handlers need (client address, user
// agent, request id), independent of which edge (Envoy, embedded, none) sent it.
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import type { Socket } from "node:net";
import { currentRequestId, REQUEST_ID_HEADER } from "./telemetry/request-id.js";

/** x-request-id: its rule and its carrying live in telemetry/request-id.ts. */
export { REQUEST_ID_HEADER };

/** The TCP peer of the request as seen by this process. */
export const peerAddressKey = createContextKey<string>("", { description: "peer address" });

/** Header the edges set to the real client address (Envoy does with use_remote_address). */
export const EXTERNAL_ADDRESS_HEADER = "x-envoy-external-address";

/** Context values of a call, from its connection (a node request, or an HTTP/2 stream's session). */
export function contextValuesFor(req: { socket?: Socket }) {
  const values = createContextValues();
  values.set(peerAddressKey, normaliseIp(req.socket?.remoteAddress ?? ""));
  return values;
}

export function normaliseIp(ip: string): string {
  return ip.startsWith("::ffff:") ? ip.slice(7) : ip;
}

/** The client's IP: the edge's external-address header if set, else the TCP peer. */
export function clientIp(ctx: HandlerContext): string {
  return ctx.requestHeader.get(EXTERNAL_ADDRESS_HEADER) || ctx.values.get(peerAddressKey) || "unknown";
}

export function userAgent(ctx: HandlerContext): string {
  return (ctx.requestHeader.get("user-agent") ?? "").slice(0, 256);
}

/**
 * The request's id, as decided where it entered this process and carried in
 * its context ("" outside a request the observability interceptor or the HTTP
 * span started). `_ctx`: the handler's context, for call sites' symmetry with clientIp.
 */
export function requestId(_ctx?: HandlerContext): string {
  return currentRequestId() ?? "";
}
