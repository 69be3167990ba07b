// Unary gRPC over HTTP/2 without connect-node's protocol pipeline. Measured
// on 2 cores (bench/, h2load, 50 in flight): connect-node's gRPC handler
// served ~0.1x of a bare @grpc/grpc-js server, mostly CPU spent in its
// async-iterable pipeline, web Headers/AbortSignal conversions and a
// DOMException per request; this path serves about as fast as grpc-js.
//
// It takes the common case only: POST, content-type application/grpc or
// application/grpc+proto, no request compression, a unary method registered
// without per-service options. Everything else (streaming RPCs such as health
// Watch and reflection, grpc+json, compressed requests, unknown paths,
// gRPC-Web, Connect) returns false and goes to connect as before. The
// interceptors and handlers are the ones connect runs (platform/rpc.ts), and
// the wire answer is the same: headers from the context, one message, then
// trailers with grpc-status (setTrailerStatus, as connect writes them).
import http2 from "node:http2";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { endCall, handlerContext, invokeUnary, type UnarySpec } from "./rpc.js";

const http2constants = http2.constants;
const CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
/** gRPC's default maximum received message size. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface GrpcUnaryOptions {
  interceptors?: readonly Interceptor[];
  contextValues?: (req: http2.Http2ServerRequest) => ContextValues;
  maxMessageBytes?: number;
}

/** Connection-specific headers HTTP/2 forbids (node throws on them). */
const H2_FORBIDDEN = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]);

function toNodeHeaders(h: Headers): Record<string, string> {
  const o: Record<string, string> = {};
  h.forEach((v, k) => {
    if (!H2_FORBIDDEN.has(k)) o[k] = v;
  });
  return o;
}

function webHeaders(req: http2.Http2ServerRequest): Headers {
  const h = new Headers();
  const raw = req.headers;
  for (const k in raw) {
    if (k.charCodeAt(0) === 58 /* ":" */) continue;
    const v = raw[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const e of v) h.append(k, e);
    else h.append(k, String(v));
  }
  return h;
}

/** One gRPC message frame (uncompressed). */
function frame(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + bytes.length);
  b[0] = 0;
  b.writeUInt32BE(bytes.length, 1);
  b.set(bytes, 5);
  return b;
}

/** The single message of a unary request body, or a ConnectError. */
function parseBody(body: Buffer, input: DescMessage): MessageShape<DescMessage> {
  if (body.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if (body.length < 5) throw new ConnectError("protocol error: promised 5 bytes in enveloped message, got less bytes", Code.InvalidArgument);
  const flags = body[0];
  const len = body.readUInt32BE(1);
  if (flags & 0b1) throw new ConnectError("protocol error: received compressed envelope, but do not know how to decompress", Code.Internal);
  if (body.length < 5 + len) throw new ConnectError(`protocol error: promised ${len} bytes in enveloped message, got less bytes`, Code.InvalidArgument);
  if (body.length > 5 + len) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  try {
    return fromBinary(input, body.subarray(5));
  } catch (e) {
    throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
  }
}

/**
 * A handler for the compat request/response of node:http2 that answers unary
 * gRPC calls of `methods` and returns true, or returns false (untouched) for
 * anything it does not serve.
 */
export function grpcUnaryHandler(methods: ReadonlyMap<string, UnarySpec>, opts: GrpcUnaryOptions = {}) {
  const interceptors = opts.interceptors ?? [];
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;

  function fail(res: http2.Http2ServerResponse, header: Headers, trailer: Headers, err: unknown): void {
    const e = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
    if (res.headersSent || res.writableEnded || res.stream.destroyed) return;
    res.writeHead(200, toNodeHeaders(header));
    res.addTrailers(toNodeHeaders(setTrailerStatus(trailer, e)));
    res.end();
  }

  async function serve(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, spec: UnarySpec, body: Buffer): Promise<void> {
    const timeout = parseTimeout((req.headers["grpc-timeout"] as string | undefined) ?? null, Number.MAX_SAFE_INTEGER);
    const ctx = handlerContext({
      spec,
      protocolName: "grpc",
      requestMethod: "POST",
      url: `http://${req.authority}${req.url}`,
      timeoutMs: timeout.timeoutMs,
      requestHeader: webHeaders(req),
      responseHeader: { "content-type": "application/grpc+proto" },
      responseTrailer: { "grpc-status": "0" },
      contextValues: opts.contextValues?.(req),
    });
    const onClose = () => {
      if (!res.writableFinished) ctx.abort(new ConnectError("the client closed the call", Code.Canceled));
    };
    req.once("close", onClose);
    try {
      if (timeout.error) throw timeout.error;
      const input = parseBody(body, spec.method.input);
      const output = await invokeUnary(spec, ctx, input, interceptors);
      let bytes: Uint8Array;
      try {
        bytes = toBinary(spec.method.output, output);
      } catch (e) {
        throw new ConnectError(`serialize binary: ${e instanceof Error ? e.message : String(e)}`, Code.Internal);
      }
      if (res.stream.destroyed) return;
      res.writeHead(200, toNodeHeaders(ctx.responseHeader));
      res.addTrailers(toNodeHeaders(ctx.responseTrailer));
      res.end(frame(bytes));
    } catch (err) {
      fail(res, ctx.responseHeader, ctx.responseTrailer, err);
    } finally {
      req.off("close", onClose);
      endCall(ctx);
    }
  }

  return (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean => {
    if (req.method !== "POST") return false;
    const spec = methods.get(req.url);
    if (!spec) return false;
    const type = req.headers["content-type"];
    if (!type || !CONTENT_TYPES.has(type.toLowerCase())) return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;

    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBytes + 5) {
        tooLarge = true;
        chunks.length = 0;
        const msg = `message larger than max (${size - 5} vs. ${maxBytes})`;
        fail(res, new Headers({ "content-type": "application/grpc+proto" }), new Headers(), new ConnectError(msg, Code.ResourceExhausted));
      } else chunks.push(chunk);
    });
    req.once("end", () => {
      if (tooLarge) return;
      serve(req, res, spec, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).catch(() => {
        // Only reached if building the call failed (e.g. contextValues threw).
        if (!res.headersSent) fail(res, new Headers({ "content-type": "application/grpc+proto" }), new Headers(), undefined);
        else res.stream.close(http2constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
    req.once("error", () => {});
    return true;
  };
}
