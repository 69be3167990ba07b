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
import type { Socket } from "node:net";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { writableError } from "./errors.js";
import { endCall, handlerContext, invokeUnary, type UnarySpec } from "./rpc.js";
import type { RequestPrelude } from "./http-types.js";

const http2constants = http2.constants;
const CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
/** gRPC's default maximum received message size. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface GrpcUnaryOptions {
  interceptors?: readonly Interceptor[];
  /** Per-call context values, from the call's connection. */
  contextValues?: (req: { socket?: Socket }) => ContextValues;
  maxMessageBytes?: number;
  /** Run on each call it takes, as the server runs it on every other request. */
  prelude?: RequestPrelude;
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

function webHeaders(raw: http2.IncomingHttpHeaders): Headers {
  const h = new Headers();
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
  if (flags & 0b1) throw new ConnectError("protocol error: received compressed envelope, but do not know how to decompress", Code.InvalidArgument);
  if (body.length < 5 + len) throw new ConnectError(`protocol error: promised ${len} bytes in enveloped message, got less bytes`, Code.InvalidArgument);
  if (body.length > 5 + len) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  try {
    return fromBinary(input, body.subarray(5));
  } catch (e) {
    // The client sent bytes that are not the method's message: its error, not ours.
    throw new ConnectError(`parse binary: ${e instanceof Error ? e.message : String(e)}`, Code.InvalidArgument);
  }
}

const socketOf = (stream: http2.ServerHttp2Stream) => stream.session?.socket as Socket | undefined;

/** Send a whole answer on the stream: headers, the message if any, then trailers. */
function respond(stream: http2.ServerHttp2Stream, header: Headers, trailer: Headers, message?: Buffer): void {
  if (stream.destroyed || stream.headersSent) return;
  const trailers = toNodeHeaders(trailer);
  stream.respond({ ...toNodeHeaders(header), ":status": 200 }, { waitForTrailers: true });
  stream.once("wantTrailers", () => {
    if (!stream.destroyed) stream.sendTrailers(trailers);
  });
  stream.end(message);
}

/**
 * A handler for the streams of a node:http2 server that answers unary gRPC
 * calls of `methods` on the stream itself (no compat request and response
 * objects) and returns true, or returns false (the stream untouched) for
 * anything it does not serve.
 */
export function grpcUnaryHandler(methods: ReadonlyMap<string, UnarySpec>, opts: GrpcUnaryOptions = {}) {
  const interceptors = opts.interceptors ?? [];
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;

  function fail(stream: http2.ServerHttp2Stream, header: Headers, trailer: Headers, err: unknown): void {
    const e = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
    respond(stream, header, setTrailerStatus(trailer, writableError(e)));
  }

  async function serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, responseHeader: Record<string, string>, spec: UnarySpec, body: Buffer): Promise<void> {
    const timeout = parseTimeout((headers["grpc-timeout"] as string | undefined) ?? null, Number.MAX_SAFE_INTEGER);
    const ctx = handlerContext({
      spec,
      protocolName: "grpc",
      requestMethod: "POST",
      url: `http://${headers[":authority"] ?? headers.host ?? "localhost"}${headers[":path"]}`,
      timeoutMs: timeout.timeoutMs,
      requestHeader: webHeaders(headers),
      responseHeader,
      responseTrailer: { "grpc-status": "0" },
      contextValues: opts.contextValues?.({ socket: socketOf(stream) }),
    });
    let answered = false;
    const onClose = () => {
      if (!answered) ctx.abort(new ConnectError("the client closed the call", Code.Canceled));
    };
    stream.once("close", onClose);
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
      answered = true;
      respond(stream, ctx.responseHeader, ctx.responseTrailer, frame(bytes));
    } catch (err) {
      answered = true;
      fail(stream, ctx.responseHeader, ctx.responseTrailer, err);
    } finally {
      stream.off("close", onClose);
      endCall(ctx);
    }
  }

  return (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean => {
    if (headers[":method"] !== "POST") return false;
    const spec = methods.get(headers[":path"] ?? "");
    if (!spec) return false;
    const type = headers["content-type"];
    if (!type || !CONTENT_TYPES.has(type.toLowerCase())) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;

    // A reset stream emits an error; the call sees it as "close" (onClose above).
    stream.on("error", () => {});
    const responseHeader: Record<string, string> = { "content-type": "application/grpc+proto" };
    const headerOnly = () => new Headers(responseHeader);
    if (opts.prelude) {
      try {
        opts.prelude({ headers, url: headers[":path"], socket: socketOf(stream) }, { setHeader: (k, v) => void (responseHeader[k] = v) });
      } catch (err) {
        fail(stream, headerOnly(), new Headers(), err);
        return true;
      }
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    stream.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBytes + 5) {
        tooLarge = true;
        chunks.length = 0;
        const msg = `message larger than max (${size - 5} vs. ${maxBytes})`;
        fail(stream, headerOnly(), new Headers(), new ConnectError(msg, Code.ResourceExhausted));
      } else chunks.push(chunk);
    });
    stream.once("end", () => {
      if (tooLarge) return;
      serve(stream, headers, responseHeader, spec, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).catch(() => {
        // Only reached if building the call failed (e.g. contextValues threw).
        if (!stream.headersSent) fail(stream, headerOnly(), new Headers(), undefined);
        else stream.close(http2constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
    return true;
  };
}
