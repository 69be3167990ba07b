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
import { createContextValues, createConnectRouter, createContextKey, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type http from "node:http";
import type { Logger } from "./logger.js";

/** Set by the outermost interceptor: the request message was read and parsed. */
const parsedKey = createContextKey(false, { description: "request message parsed" });

/** The first interceptor of the chain: marks the call as past connect's parsing. */
export const markParsed: Interceptor = (next) => (req) => {
  req.contextValues.set(parsedKey, true);
  return next(req);
};

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
    const values = opts.contextValues?.(req) ?? createContextValues();
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    handler(uReq)
      .then((uRes) => clientFault(uRes, String(req.headers["content-type"] ?? ""), () => values.get(parsedKey)))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((err: unknown) => {
        // The client went away mid-answer, or writing failed: nothing left to tell it.
        opts.log.debug("rpc answer not written", { rpc: handler.requestPath, err });
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: 13, message: "internal error" }));
        } else res.destroy();
      });
  };
}
