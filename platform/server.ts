// One port for everything: HTTP/1.1 and cleartext HTTP/2 (h2c, prior
// knowledge) are told apart by the HTTP/2 connection preface, as Envoy's
// `codec_type: AUTO` does. gRPC, gRPC-Web and Connect go to the connect
// router; plain HTTP handlers (REST edge, JWKS, /metrics, /health) run first.
// Unary gRPC calls over h2c are taken before all that, on the HTTP/2 stream
// itself, by platform/grpc.ts (the same handlers and interceptors without
// connect-node's protocol pipeline or node's compat request/response objects,
// several times faster); everything else goes the way above.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ConnectRouter, ContextValues, Interceptor } from "@connectrpc/connect";
import { answerUnknownMethod, rpcAdapter } from "./adapter.js";
import { grpcUnaryHandler } from "./grpc.js";
import type { ConnectionLimits } from "./config.js";
import type { Logger } from "./logger.js";
import { unaryMethods } from "./rpc.js";
import { textHygiene } from "./validate.js";
import type { HttpHandler, NodeRequest, NodeResponse, RequestPrelude } from "./http-types.js";
import { createListener, type TlsMaterial } from "./tls.js";

export type { HttpHandler, NodeRequest, NodeResponse, RequestPrelude } from "./http-types.js";

export interface ServerOptions {
  port: number;
  host?: string;
  routes: (router: ConnectRouter) => void;
  interceptors?: Interceptor[];
  /** Tried in order before the RPC router. */
  httpHandlers?: HttpHandler[];
  prelude?: RequestPrelude;
  /** Per-call context values, from the call's connection. */
  contextValues?: (req: { socket?: net.Socket }) => ContextValues;
  /** Serve TLS (1.2+, ALPN h2 and http/1.1) with this certificate instead of plain TCP (platform/tls.ts). */
  tls?: TlsMaterial;
  /** Defaults: DEFAULT_LIMITS (the config's defaults). */
  limits?: Partial<ConnectionLimits>;
  log: Logger;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
  maxConnections: 10_000,
  maxConcurrentStreams: 100,
  maxMessageBytes: 4 * 1024 * 1024,
  maxHeaderCount: 100,
  maxHeaderBytes: 16 * 1024,
  maxJsonDepth: 64,
};

/** The JSON error body of the port's own refusals: {"code","message"} (gRPC code). */
function refusal(status: number, text?: string): { status: number; body: string } {
  const [code, message] =
    status === 431 ? [8, "request headers too large"] : status === 408 ? [4, "request timed out"] : status === 413 ? [8, "request body too large"] : [3, "bad request"];
  return { status, body: JSON.stringify({ code, message: text ?? message }) };
}

/** Header fields of a request as sent (pseudo-headers not counted); rawHeaders is [name, value, ...]. */
function headerCount(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].charCodeAt(0) !== 58 /* ":" */) n++;
  return n;
}

/**
 * HTTP/1.1 keep-alive: what is left of a request body once its answer is written.
 * Node discards a body nobody started reading (req._dump), but not one whose reader
 * stopped midway: connect's gRPC handler answers after the first message and drops
 * (destroys) the request stream, a REST body reader stops at a bad gzip byte. Node's
 * parser then pushes the rest of the body into a request nobody reads, stops reading
 * the socket when that push is refused, and the next request on the connection is
 * never read: the client waits for an answer that never comes. Here the request is
 * marked dumped, as node's own _dump does (its parser then drops the body bytes
 * instead of pushing them), and the socket reads on; a body still unfinished after
 * the request timeout closes the connection.
 */
function discardUnreadBody(req: http.IncomingMessage, socket: net.Socket, limits: ConnectionLimits): void {
  if (req.complete || socket.destroyed) return;
  const incoming = req as { _dumped?: boolean };
  if (!incoming._dumped) {
    incoming._dumped = true;
    // Unless node paused it itself (pipelined answers waiting to be written).
    if (!(socket as { _paused?: boolean })._paused) socket.resume();
  }
  setTimeout(() => {
    if (!req.complete) socket.destroy();
  }, limits.requestTimeoutMs).unref();
}

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  /** Stop accepting, let in-flight requests finish (up to graceMs), then close. */
  close(graceMs?: number): Promise<void>;
}

/** Accept queue of the port (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  // Every request's text fields are checked last, right before the handler (platform/validate.ts).
  const interceptors = [...(opts.interceptors ?? []), textHygiene];
  const rpc = rpcAdapter({
    routes: opts.routes,
    interceptors,
    contextValues: opts.contextValues as never,
    maxMessageBytes: limits.maxMessageBytes,
    log: opts.log,
    fallback: (req, res) => {
      // gRPC, gRPC-Web and Connect calls of an unknown method: UNIMPLEMENTED in their own form.
      if (answerUnknownMethod(req, res)) return;
      res.writeHead(404, { "content-type": "application/json" });
      // The shape and text of the edges' own 404 (edge/errors.ts LOCAL_REPLIES).
      res.end(JSON.stringify({ code: 5, message: "no route matches this path" }));
    },
  });
  // The same routes and interceptors, for the unary gRPC fast path.
  const grpc = grpcUnaryHandler(unaryMethods(opts.routes), {
    interceptors,
    maxMessageBytes: limits.maxMessageBytes,
    contextValues: opts.contextValues,
    prelude: opts.prelude,
  });
  let draining = false;
  // HTTP/1.1 connections with a request being answered, and those that have had one:
  // on shutdown, idle keep-alive connections are closed, the others once answered.
  const busy = new Set<net.Socket>();
  const served = new WeakSet<net.Socket>();
  const handle = async (req: NodeRequest, res: NodeResponse) => {
    if (req.httpVersionMajor === 1) {
      const socket = req.socket as net.Socket;
      busy.add(socket);
      served.add(socket);
      // An answer given before the request body was read to its end (an early refusal, a gRPC
      // status after the first message) must not leave that body in the connection.
      res.once("finish", () => discardUnreadBody(req as http.IncomingMessage, socket, limits));
      res.once("close", () => {
        busy.delete(socket);
        if (draining) socket.end();
      });
      if (draining) res.setHeader("connection", "close");
    }
    try {
      if (req.httpVersionMajor === 1 && headerCount(req.rawHeaders) > limits.maxHeaderCount) {
        const r = refusal(431);
        res.writeHead(r.status, { "content-type": "application/json", connection: "close" });
        res.end(r.body);
        return;
      }
      // HTTP/1.1 requires Host (RFC 9112 3.2); node's own check (requireHostHeader, off below)
      // answered before the count check, with an empty body, when the count limit dropped it.
      if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) {
        const r = refusal(400, "missing Host header");
        res.writeHead(r.status, { "content-type": "application/json", connection: "close" });
        res.end(r.body);
        return;
      }
      opts.prelude?.(req, res);
      for (const h of opts.httpHandlers ?? []) {
        if (await h(req, res)) return;
      }
      rpc(req as never, res as never);
    } catch (err) {
      opts.log.error("http handler failed", { path: req.url?.split("?")[0], err });
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: 13, message: "internal error", details: [] }));
      } else res.destroy?.();
    }
  };

  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      // Checked in `handle`, after the header count: a request over the count limit may have
      // lost its Host to maxHeadersCount (node keeps the first ones) and must get its 431.
      requireHostHeader: false,
      keepAliveTimeout: limits.idleTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      // Node checks the two timeouts above at this interval: finer when they are short.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
    },
    handle as http.RequestListener,
  );
  // h1 never listens itself (connections are handed to it below), so Node's check of the
  // headers and request timeouts, which starts on "listening", is started here.
  // One more than allowed, so that a request over the limit is seen (node drops the rest silently).
  h1.maxHeadersCount = limits.maxHeaderCount + 1;
  h1.emit("listening");
  // Node's own refusals of a request it cannot parse (headers too large, malformed,
  // headers timeout), in the port's JSON error shape instead of an empty body.
  h1.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // As node's own handler: only when no answer of this connection has started (keep-alive).
    const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code !== "ECONNRESET" && socket.writable && !current?.headersSent) {
      const r = refusal(err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400);
      socket.write(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status]}\r\ncontent-type: application/json\r\ncontent-length: ${r.body.length}\r\nconnection: close\r\n\r\n${r.body}`);
    }
    socket.destroy();
  });
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes },
      // Above the count limit, so that the check below answers rather than nghttp2 resetting the stream.
      maxHeaderListPairs: limits.maxHeaderCount + 64,
    },
    handle as never,
  );
  // Node's compat layer listens to "stream" to make a request and a response
  // for `handle`; unary gRPC calls are answered on the stream before it.
  const compat = h2.listeners("stream");
  h2.removeAllListeners("stream");
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: unknown, ...rest: unknown[]) => {
    if (Array.isArray(rawHeaders) && headerCount(rawHeaders) > limits.maxHeaderCount) return tooManyHeaders(stream, headers);
    if (grpc(stream, headers)) return;
    for (const listener of compat) listener.call(h2, stream, headers, flags, rawHeaders, ...rest);
  });
  /** 431 with the JSON body, or for gRPC and gRPC-Web a trailers-only RESOURCE_EXHAUSTED. */
  const tooManyHeaders = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", () => {});
    const type = String(headers["content-type"] ?? "");
    const r = refusal(431);
    if (type.startsWith("application/grpc")) {
      stream.respond({ ":status": 200, "content-type": type, "grpc-status": "8", "grpc-message": "request%20headers%20too%20large" }, { endStream: true });
    } else {
      stream.respond({ ":status": r.status, "content-type": "application/json" });
      stream.end(r.body);
    }
  };
  const sessions = new Set<http2.Http2Session>();
  /** Streams being answered per session (what a forced close would cut). */
  const openStreams = new WeakMap<http2.Http2Session, number>();
  h2.on("session", (s) => {
    sessions.add(s);
    // A connection accepted just before shutting down gets its first request served, then
    // GOAWAY (or GOAWAY after the headers timeout if it sends none).
    if (draining) {
      s.once("stream", () => setImmediate(() => s.close()));
      setTimeout(() => s.close(), limits.headersTimeoutMs).unref();
    }
    s.once("close", () => sessions.delete(s));
    // Idle sessions go; a session with an open stream (a long Watch) stays.
    let open = 0;
    s.on("stream", (stream: http2.ServerHttp2Stream) => {
      openStreams.set(s, ++open);
      stream.once("close", () => openStreams.set(s, --open));
    });
    s.setTimeout(limits.idleTimeoutMs, () => {
      if (open === 0) s.close();
    });
  });
  const sockets = new Set<net.Socket>();

  const tcp = createListener(opts.tls, limits.headersTimeoutMs, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // A connection that sends nothing (or too little to tell HTTP/2 from HTTP/1.1) is closed.
    const stalled = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    socket.once("close", () => clearTimeout(stalled));
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const isH2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && buf.length < PREFACE.length) return; // need more bytes to decide
      socket.off("data", onData);
      clearTimeout(stalled);
      socket.pause();
      socket.unshift(buf);
      // http2 drains the unshifted bytes (readableLength) into its session and
      // then reads the handle directly: resuming would emit them to nobody.
      // http1 attaches a data listener and needs the stream flowing again.
      if (isH2) h2.emit("connection", socket);
      else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  tcp.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    // A deep accept queue (the kernel caps it at net.core.somaxconn): under a burst of new
    // connections a full queue drops SYNs and a client waits a 1 s retransmit for its turn.
    tcp.listen({ port: opts.port, host: opts.host ?? "0.0.0.0", backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const port = (tcp.address() as net.AddressInfo).port;
  const shownHost = !opts.host || opts.host === "0.0.0.0" || opts.host === "::" ? "localhost" : opts.host;

  return {
    port,
    url: `${opts.tls ? "https" : "http"}://${shownHost}:${port}`,
    // Stop accepting (new connections are refused by the OS), send GOAWAY on every
    // HTTP/2 session (its open streams finish, new ones are refused with
    // REFUSED_STREAM), close idle HTTP/1.1 keep-alive connections and the others
    // once their request is answered (connection: close). A connection accepted
    // but not yet read is served or closed by the headers timeout. Everything
    // left after graceMs is closed.
    close: async (graceMs = 10_000) => {
      draining = true;
      const stopped = new Promise<void>((r) => tcp.close(() => r()));
      for (const s of sessions) s.close();
      for (const socket of sockets) if (served.has(socket) && !busy.has(socket)) socket.end();
      const grace = new Promise<void>((r) => setTimeout(r, graceMs).unref());
      await Promise.race([stopped, grace]);
      // Requests still being answered when the grace period ran out: cut by the close below.
      let cut = busy.size;
      for (const session of sessions) cut += openStreams.get(session) ?? 0;
      (cut > 0 ? opts.log.warn : opts.log.info).call(opts.log, "server closed", { cutRequests: cut });
      h1.closeAllConnections();
      h1.close(() => {}); // stops the timeout checks (it never listened: the callback gets ERR_SERVER_NOT_RUNNING)
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}
