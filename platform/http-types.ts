// The request and handler types every part of the one port shares (server.ts,
// the unary gRPC path in grpc.ts, the edge's and telemetry's plain HTTP
// handlers): here, so that none of them imports the server for a type.
import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
/** A plain HTTP handler; returns true when it answered the request. */
export type HttpHandler = (req: NodeRequest, res: NodeResponse) => boolean | Promise<boolean>;

/**
 * Runs first for every request on the port, whichever path then serves it
 * (plain HTTP handlers, connect, the unary gRPC path): may rewrite the
 * request's headers and set headers of the response (the edge's header
 * hygiene, edge/headers.ts). Synchronous and cheap: it runs on every call.
 */
export type RequestPrelude = (
  req: { readonly headers: http.IncomingHttpHeaders; readonly url?: string; readonly socket?: net.Socket },
  res: { setHeader(name: string, value: string): unknown },
) => void;
