// connect-node's adapter (gRPC, gRPC-Web, Connect on node:http and node:http2)
// with the port's message limit and honest codes for the client's bytes.
//
// - readMaxBytes bounds a message as read and, for compressed messages, while
//   inflating: connect-node's gzip and brotli pass it to zlib as
//   maxOutputLength, so a decompression bomb stops at the limit
//   (RESOURCE_EXHAUSTED) instead of being inflated in full.
// - connect reports a request message it cannot decode or decompress as
//   INTERNAL ("parse binary: ...", "decompression failed", "received compressed
//   envelope, but do not know how to decompress"). Those are the client's bytes:
//   an INTERNAL that happens before the first interceptor saw the parsed request
//   becomes INVALID_ARGUMENT here, in each protocol's error form (Connect: HTTP
//   400 and "invalid_argument"; gRPC: the grpc-status trailer; gRPC-Web: the
//   trailer frame at the end of the body). INTERNAL raised later (the services,
//   the interceptors) is left as it is.
//
// Answers connect leaves without a body, or that no handler gives, come in the
// protocol the client speaks (rpcProtocolOf: content-type and Connect's markers):
// - no such method (the fallback of platform/server.ts, answerUnknownMethod):
//   gRPC and gRPC-Web HTTP 200 with grpc-status UNIMPLEMENTED (trailers-only),
//   Connect HTTP 404 {"code":"unimplemented"} (its code for HTTP 404);
// - connect's own 405 (a method other than POST; no method here is marked
//   NO_SIDE_EFFECTS, so none takes Connect GET), 415 (a codec or content-type
//   variant the method does not take: `application/proto; x`, `application/json;
//   charset=latin1`, a streaming type on a unary method) and 505 (a bidi stream
//   over HTTP/1.1) keep their HTTP status (415 is the Connect protocol's; 405 and
//   505 are what connect-go and connect-es answer too, 505 with connection: close
//   so that a client expecting full duplex is not left waiting) and get Connect's JSON error body {"code":"unimplemented","message"} instead of
//   none: the protocol's code for something the server does not support (its
//   answer to an unsupported content-encoding too), and what a Connect client
//   shows instead of the "unknown" it makes of an empty 4xx. gRPC and gRPC-Web
//   requests keep connect's bare 415, as gRPC's HTTP/2 spec has it.
// - a streaming call's request messages are parsed while the implementation
//   reads them, after the interceptors: markParsed wraps that iterable so that a
//   message connect cannot decode (INTERNAL "parse binary: ...") is
//   INVALID_ARGUMENT there too.
import { Code, ConnectError, createContextValues, createConnectRouter, createContextKey, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { writableError } from "./errors.js";
import type http from "node:http";
import type http2 from "node:http2";
import type { Logger } from "./logger.js";

/** Set by the outermost interceptor: the request message was read and parsed. */
const parsedKey = createContextKey(false, { description: "request message parsed" });

/**
 * The first interceptor of the chain: marks the call as past connect's parsing.
 * A stream's messages are parsed later, as they are read: what connect cannot
 * decode there is the client's fault too (clientMessages).
 */
export const markParsed: Interceptor = (next) => (req) => {
  req.contextValues.set(parsedKey, true);
  return next(req.stream ? { ...req, message: clientMessages(req.message) } : req);
};

/**
 * The request messages of a stream, with an INTERNAL raised while reading them
 * (connect's "parse binary", "decompression failed": bytes the client sent)
 * given as INVALID_ARGUMENT. Errors of the implementation do not pass here.
 */
async function* clientMessages<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code !== Code.Internal) throw err;
    const fixed = new ConnectError(e.rawMessage, Code.InvalidArgument, e.metadata, undefined, e.cause);
    fixed.details = e.details;
    throw fixed;
  }
}

export type RpcProtocol = "grpc" | "grpc-web" | "connect";

/** "/package.Service/Method" (the method may be empty or misspelt: it is the form that counts). */
const RPC_PATH = /^\/[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\/[^/]*$/;

type AnyRequest = Pick<http.IncomingMessage, "headers" | "method" | "url">;

/**
 * The RPC protocol a request speaks, or undefined for plain HTTP: gRPC and
 * gRPC-Web by content-type; Connect by its version header or query parameter,
 * a streaming Connect content-type, or a unary one (application/proto or
 * application/json) POSTed to a /package.Service/Method path.
 */
export function rpcProtocolOf(req: AnyRequest): RpcProtocol | undefined {
  const type = String(req.headers["content-type"] ?? "").toLowerCase();
  if (type.startsWith("application/grpc-web")) return "grpc-web";
  if (type.startsWith("application/grpc")) return "grpc";
  if (req.headers["connect-protocol-version"] !== undefined || type.startsWith("application/connect+")) return "connect";
  const [path, query = ""] = (req.url ?? "").split("?", 2);
  if (!RPC_PATH.test(path)) return undefined;
  if (req.method === "POST" && /^application\/(?:proto|json)\s*(?:;|$)/.test(type)) return "connect";
  if (req.method === "GET" && /(?:^|&)connect=v1(?:&|$)/.test(query)) return "connect";
  return undefined;
}

type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * An error answer in the protocol's own form: gRPC and gRPC-Web trailers-only
 * (HTTP 200, grpc-status and grpc-message in the headers, end of stream),
 * Connect its JSON error body with `connectStatus`.
 */
export function writeRpcError(req: AnyRequest, res: AnyResponse, protocol: RpcProtocol, err: ConnectError, connectStatus: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  if (protocol === "connect") {
    const body = Buffer.from(errorToJsonBytes(err, {}));
    res.writeHead(connectStatus, { ...headers, "content-type": "application/json", "content-length": String(body.length) });
    if (req.method === "HEAD") res.end();
    else res.end(body);
    return;
  }
  const out: Record<string, string> = { ...headers, "content-type": String(req.headers["content-type"] ?? `application/${protocol}`) };
  setTrailerStatus(new Headers(), writableError(err)).forEach((v, k) => (out[k] = v));
  const stream = (res as http2.Http2ServerResponse).stream as http2.ServerHttp2Stream | undefined;
  if (stream) {
    // HTTP/2: one HEADERS frame that ends the stream, as gRPC's trailers-only answer must be.
    if (!stream.destroyed && !stream.headersSent) stream.respond({ ...out, ":status": 200 }, { endStream: true });
    return;
  }
  res.writeHead(200, { ...out, "content-length": "0" });
  res.end();
}

/**
 * An RPC to a method the port does not serve, answered as its protocol expects
 * (gRPC and gRPC-Web: UNIMPLEMENTED; Connect: 404 "unimplemented"). False when
 * the request is not an RPC (the caller gives its plain HTTP 404).
 */
export function answerUnknownMethod(req: AnyRequest, res: AnyResponse): boolean {
  const protocol = rpcProtocolOf(req);
  if (!protocol) return false;
  const path = (req.url ?? "").split("?", 1)[0];
  writeRpcError(req, res, protocol, new ConnectError(`${JSON.stringify(path.slice(0, 200))} is not a method of this server`, Code.Unimplemented), 404);
  return true;
}

/** Connect's own answers without a body (405, 415, 505), with the protocol's error body. */
const BARE_ANSWERS: Readonly<Record<number, (req: AnyRequest, allowed: readonly string[]) => string>> = {
  405: (req, allowed) => `HTTP method ${req.method} is not allowed for this RPC; use ${allowed.join(" or ")}`,
  415: (req) => `content-type ${JSON.stringify(String(req.headers["content-type"] ?? ""))} is not supported by this RPC; send application/proto or application/json`,
  505: () => "bidirectional streaming needs HTTP/2",
};

function withErrorBody(uRes: UniversalServerResponse, req: AnyRequest, allowed: readonly string[]): UniversalServerResponse {
  const text = BARE_ANSWERS[uRes.status];
  if (!text || uRes.body !== undefined) return uRes;
  const protocol = rpcProtocolOf(req);
  if (protocol === "grpc" || protocol === "grpc-web") return uRes;
  const body = errorToJsonBytes(new ConnectError(text(req, allowed), Code.Unimplemented), {});
  const header = new Headers(uRes.header);
  header.set("content-type", "application/json");
  header.set("content-length", String(body.length));
  if (uRes.status === 405) header.set("allow", allowed.join(", "));
  return { ...uRes, header, body: once(body) };
}

export interface AdapterOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: readonly Interceptor[];
  contextValues?: (req: http.IncomingMessage) => ContextValues;
  maxMessageBytes: number;
  fallback: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  log: Logger;
}

const INTERNAL = 13;
const INVALID_ARGUMENT = 3;

async function* rewriteGrpcWebTrailer(body: AsyncIterable<Uint8Array>, parsed: () => boolean): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    // The trailer frame: flag 0x80, length, then "grpc-status: 13\r\n..." (connect writes it as one chunk).
    if (chunk.length >= 5 && chunk[0] === 0x80 && !parsed()) {
      const text = Buffer.from(chunk.subarray(5)).toString("latin1");
      const status = /^grpc-status: ?13(\r?)$/m;
      if (status.test(text)) {
        const fixed = Buffer.from(text.replace(status, `grpc-status: ${INVALID_ARGUMENT}$1`), "latin1");
        const out = Buffer.allocUnsafe(5 + fixed.length);
        out[0] = 0x80;
        out.writeUInt32BE(fixed.length, 1);
        fixed.copy(out, 5);
        yield out;
        continue;
      }
    }
    yield chunk;
  }
}

async function* thenFixTrailer(body: AsyncIterable<Uint8Array>, trailer: Headers, parsed: () => boolean): AsyncIterable<Uint8Array> {
  yield* body;
  if (!parsed() && trailer.get("grpc-status") === String(INTERNAL)) trailer.set("grpc-status", String(INVALID_ARGUMENT));
}

async function fixConnectUnary(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const c of res.body ?? []) chunks.push(c);
  const raw = Buffer.concat(chunks);
  let json: { code?: string };
  try {
    json = JSON.parse(raw.toString("utf8")) as { code?: string };
  } catch {
    json = {};
  }
  if (json.code !== "internal") return { ...res, body: once(raw) };
  json.code = "invalid_argument";
  const body = Buffer.from(JSON.stringify(json));
  const header = new Headers(res.header);
  header.set("content-length", String(body.length));
  return { status: 400, header, trailer: res.trailer, body: once(body) };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/**
 * The answer, with an INTERNAL raised before the request was parsed turned into
 * INVALID_ARGUMENT in the protocol's own form. gRPC and gRPC-Web parse while the
 * answer streams, so `parsed` is asked when the status is written.
 */
function clientFault(res: UniversalServerResponse, contentType: string, parsed: () => boolean): UniversalServerResponse | Promise<UniversalServerResponse> {
  const type = contentType.toLowerCase();
  if (type.startsWith("application/grpc-web")) {
    return res.body ? { ...res, body: rewriteGrpcWebTrailer(res.body, parsed) } : res;
  }
  if (type.startsWith("application/grpc")) {
    if (!res.body || !res.trailer) {
      // Trailers-only: the status is in the headers.
      if (!parsed() && res.header?.get("grpc-status") === String(INTERNAL)) res.header.set("grpc-status", String(INVALID_ARGUMENT));
      return res;
    }
    return { ...res, body: thenFixTrailer(res.body, res.trailer, parsed) };
  }
  // Connect unary: HTTP 500 with {"code":"internal",...}; the call is over, parsed is final.
  if (!parsed() && res.status === 500 && (res.header?.get("content-type") ?? "").startsWith("application/json")) return fixConnectUnary(res);
  return res;
}

/**
 * connect-node takes the URL's authority from Host (HTTP/1.x) or :authority
 * (HTTP/2) and throws when there is none (an HTTP/1.0 request, an HTTP/2 one
 * with neither): the URL only informs the handlers, so a placeholder does.
 */
function ensureAuthority(req: http.IncomingMessage): void {
  const h2 = req as unknown as { authority?: string };
  if ("authority" in req) {
    if (!h2.authority) req.headers[":authority"] = req.headers.host ?? "localhost";
  } else if (req.headers.host === undefined) req.headers.host = "localhost";
}

/** The answer to a request that cannot be decoded because one of its strings is not well-formed UTF-16. */
export const UNDECODABLE = "cannot decode the request: a string holds a lone UTF-16 surrogate";

export function rpcAdapter(opts: AdapterOptions) {
  const router = createConnectRouter({
    interceptors: [markParsed, ...opts.interceptors],
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: opts.maxMessageBytes,
  });
  opts.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) return opts.fallback(req, res);
    ensureAuthority(req);
    const values = opts.contextValues?.(req) ?? createContextValues();
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    handler(uReq)
      .then((uRes) => withErrorBody(uRes, req, handler.allowedMethods))
      .then((uRes) => clientFault(uRes, String(req.headers["content-type"] ?? ""), () => values.get(parsedKey)))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((err: unknown) => {
        // A request whose JSON holds a lone UTF-16 surrogate: connect's decode error quotes it, and
        // writing that as grpc-message (encodeURIComponent) throws. The request is at fault.
        const protocol = rpcProtocolOf(req);
        if (err instanceof URIError && !values.get(parsedKey) && protocol && !res.headersSent) {
          return writeRpcError(req, res, protocol, new ConnectError(UNDECODABLE, Code.InvalidArgument), 400);
        }
        // The client went away mid-answer, or writing failed: nothing left to tell it.
        opts.log.debug("rpc answer not written", { rpc: handler.requestPath, err });
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: 13, message: "internal error" }));
        } else res.destroy();
      });
  };
}
