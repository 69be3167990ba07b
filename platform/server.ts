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
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { grpcUnaryHandler } from "./grpc.js";
import type { ConnectionLimits } from "./config.js";
import type { Logger } from "./logger.js";
import { unaryMethods } from "./rpc.js";

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
};

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  /** Stop accepting, let in-flight requests finish (up to graceMs), then close. */
  close(graceMs?: number): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const rpc = connectNodeAdapter({
    routes: opts.routes,
    interceptors: opts.interceptors,
    contextValues: opts.contextValues as never,
    fallback: (_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      // The shape and text of the edges' own 404 (edge/errors.ts LOCAL_REPLIES).
      res.end(JSON.stringify({ code: 5, message: "no route matches this path" }));
    },
  });
  // The same routes and interceptors, for the unary gRPC fast path.
  const grpc = grpcUnaryHandler(unaryMethods(opts.routes), {
    interceptors: opts.interceptors,
    contextValues: opts.contextValues,
    prelude: opts.prelude,
  });
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  const track = (call: { once(event: "close", fn: () => void): unknown }) => {
    inFlight++;
    call.once("close", () => {
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    });
  };
  const handle = async (req: NodeRequest, res: NodeResponse) => {
    track(res);
    if (draining && "setHeader" in res && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    try {
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

  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const h1 = http.createServer(
    {
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
  h1.emit("listening");
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.maxConcurrentStreams } }, handle as never);
  // Node's compat layer listens to "stream" to make a request and a response
  // for `handle`; unary gRPC calls are answered on the stream before it.
  const compat = h2.listeners("stream");
  h2.removeAllListeners("stream");
  h2.on("stream", (stream, headers, ...rest) => {
    if (grpc(stream, headers)) return track(stream);
    for (const listener of compat) listener.call(h2, stream, headers, ...rest);
  });
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    // Idle sessions go; a session with an open stream (a long Watch) stays.
    let open = 0;
    s.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      stream.once("close", () => open--);
    });
    s.setTimeout(limits.idleTimeoutMs, () => {
      if (open === 0) s.close();
    });
  });
  const sockets = new Set<net.Socket>();

  const tcp = net.createServer((socket) => {
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
    tcp.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  const port = (tcp.address() as net.AddressInfo).port;
  const shownHost = !opts.host || opts.host === "0.0.0.0" || opts.host === "::" ? "localhost" : opts.host;

  return {
    port,
    url: `http://${shownHost}:${port}`,
    close: async (graceMs = 10_000) => {
      draining = true;
      const stopped = new Promise<void>((r) => tcp.close(() => r()));
      for (const s of sessions) s.close(); // GOAWAY: no new streams, finish open ones
      h1.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((r) => (drained = r)), new Promise((r) => setTimeout(r, graceMs).unref())]);
      }
      h1.closeAllConnections();
      h1.close(() => {}); // stops the timeout checks (it never listened: the callback gets ERR_SERVER_NOT_RUNNING)
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
}
