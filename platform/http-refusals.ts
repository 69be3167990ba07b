// The port's own refusals, before any handler runs: too many header fields
// (431), an HTTP/1.1 request without Host (400), and what node's HTTP/1 parser
// cannot take (headers too large 431, timeout 408, malformed 400). Every one
// answers with the JSON error body {"code","message"} (gRPC code), or for gRPC
// and gRPC-Web a trailers-only status.
import http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";
import type { NodeRequest, NodeResponse } from "./http-types.js";

/** The JSON error body of the port's own refusals: {"code","message"} (gRPC code). */
export function refusal(status: number, text?: string): { status: number; body: string } {
  const [code, message] =
    status === 431 ? [8, "request headers too large"] : status === 408 ? [4, "request timed out"] : status === 413 ? [8, "request body too large"] : [3, "bad request"];
  return { status, body: JSON.stringify({ code, message: text ?? message }) };
}

/** Header fields of a request as sent (pseudo-headers not counted); rawHeaders is [name, value, ...]. */
export function headerCount(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].charCodeAt(0) !== 58 /* ":" */) n++;
  return n;
}

/**
 * An HTTP/1 request over the header count limit (431) or HTTP/1.1 without Host (400):
 * answered here (connection: close) and true; false for any other request.
 */
export function refuseHttp1Request(req: NodeRequest, res: NodeResponse, maxHeaderCount: number): boolean {
  if (req.httpVersionMajor !== 1) return false;
  let r: { status: number; body: string } | undefined;
  if (headerCount(req.rawHeaders) > maxHeaderCount) r = refusal(431);
  // HTTP/1.1 requires Host (RFC 9112 3.2); node's own check (requireHostHeader, off in server.ts)
  // answered before the count check, with an empty body, when the count limit dropped it.
  else if (req.httpVersionMinor >= 1 && req.headers.host === undefined) r = refusal(400, "missing Host header");
  if (!r) return false;
  res.writeHead(r.status, { "content-type": "application/json", connection: "close" });
  res.end(r.body);
  return true;
}

/**
 * Node's own refusals of an HTTP/1 request it cannot parse (headers too large, malformed,
 * headers timeout), in the port's JSON error shape instead of an empty body: the
 * server's "clientError" listener.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  // As node's own handler: only when no answer of this connection has started (keep-alive).
  const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code !== "ECONNRESET" && socket.writable && !current?.headersSent) {
    const r = refusal(err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400);
    socket.write(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status]}\r\ncontent-type: application/json\r\ncontent-length: ${r.body.length}\r\nconnection: close\r\n\r\n${r.body}`);
  }
  socket.destroy();
}

/** An HTTP/2 stream over the header count limit: 431 with the JSON body, or for gRPC and gRPC-Web a trailers-only RESOURCE_EXHAUSTED. */
export function refuseHttp2Headers(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on("error", () => {});
  const type = String(headers["content-type"] ?? "");
  const r = refusal(431);
  if (type.startsWith("application/grpc")) {
    stream.respond({ ":status": 200, "content-type": type, "grpc-status": "8", "grpc-message": "request%20headers%20too%20large" }, { endStream: true });
  } else {
    stream.respond({ ":status": r.status, "content-type": "application/json" });
    stream.end(r.body);
  }
}
