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
import { unaryMethods, type UnarySpec } from "./rpc.js";
import { textHygiene } from "./validate.js";
import type { HttpHandler, NodeRequest, NodeResponse, RequestPrelude } from "./http-types.js";
import { answerClientError, headerCount, refuseHttp1Request, refuseHttp2Headers } from "./http-refusals.js";
import { handOverByPreface } from "./protocol-sniff.js";
import { discardUnreadBody } from "./unread-body.js";
import { createListener, type TlsMaterial } from "./tls.js";

export type { HttpHandler, NodeRequest, NodeResponse, RequestPrelude } from "./http-types.js";

export interface ServerOptions {
  port: number;
  host?: string;
  routes: (router: ConnectRouter) => void;
  /** The unary method table of `routes` when the host built it already (platform/rpc.ts unaryMethods). */
  methods?: ReadonlyMap<string, UnarySpec>;
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

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  /** Stop accepting, let in-flight requests finish (up to graceMs), then close. */
  close(graceMs?: number): Promise<void>;
}

/** Accept queue of the port (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

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
  const grpc = grpcUnaryHandler(opts.methods ?? unaryMethods(opts.routes), {
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
      res.once("finish", () => discardUnreadBody(req as http.IncomingMessage, socket, limits.requestTimeoutMs));
      res.once("close", () => {
        busy.delete(socket);
        if (draining) socket.end();
      });
      if (draining) res.setHeader("connection", "close");
    }
    try {
      if (refuseHttp1Request(req, res, limits.maxHeaderCount)) return;
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
  // Node's own refusals of a request it cannot parse: in the port's JSON error shape.
  h1.on("clientError", answerClientError);
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
    if (Array.isArray(rawHeaders) && headerCount(rawHeaders) > limits.maxHeaderCount) return refuseHttp2Headers(stream, headers);
    if (grpc(stream, headers)) return;
    for (const listener of compat) listener.call(h2, stream, headers, flags, rawHeaders, ...rest);
  });
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
    // HTTP/2 or HTTP/1.1 by the first bytes; a connection that sends too few to tell is closed.
    handOverByPreface(socket, h1, h2, limits.headersTimeoutMs);
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
