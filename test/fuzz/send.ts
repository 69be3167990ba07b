// Sends fuzz requests as they are (bytes, not objects): REST and Connect over
// HTTP/1.1 keep-alive connections, gRPC over one h2c session (reopened when the
// edge closes it), at most `concurrency` at once.
import { request as http1, Agent } from "node:http";
import { connect, constants, type ClientHttp2Session } from "node:http2";
import type { FuzzRequest } from "./rest-cases.js";

export interface FuzzAnswer {
  status?: number;
  headers: Record<string, string>;
  /** gRPC trailers (or trailers-only headers). */
  trailers: Record<string, string>;
  body: Buffer;
  /** The connection failed or was reset before a whole answer. */
  error?: string;
  ms: number;
}

const TIMEOUT_MS = 15_000;

const flat = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !k.startsWith(":")).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]));

export class Sender {
  private agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private session?: ClientHttp2Session;
  constructor(private readonly base: URL) {}

  send(req: FuzzRequest): Promise<FuzzAnswer> {
    return req.proto === "grpc" ? this.h2(req) : this.h1(req);
  }

  private h1(req: FuzzRequest): Promise<FuzzAnswer> {
    const started = Date.now();
    return new Promise((resolve) => {
      const done = (a: Omit<FuzzAnswer, "ms">) => resolve({ ...a, ms: Date.now() - started });
      try {
        const r = http1({ host: this.base.hostname, port: this.base.port, method: req.method, path: req.path, headers: { ...req.headers, ...(req.body ? { "content-length": String(req.body.length) } : {}) }, agent: this.agent, timeout: TIMEOUT_MS }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => done({ status: res.statusCode, headers: flat(res.headers), trailers: flat(res.trailers), body: Buffer.concat(chunks) }));
          res.on("error", (e) => done({ status: res.statusCode, headers: flat(res.headers), trailers: {}, body: Buffer.concat(chunks), error: e.message }));
        });
        r.on("timeout", () => r.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
        r.on("error", (e) => done({ headers: {}, trailers: {}, body: Buffer.alloc(0), error: `${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.trim() }));
        r.end(req.body);
      } catch (e) {
        done({ headers: {}, trailers: {}, body: Buffer.alloc(0), error: `client refused to send: ${(e as Error).message}` });
      }
    });
  }

  private h2session(): ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const s = connect(this.base.origin, { maxHeaderListPairs: 2000, peerMaxConcurrentStreams: 100 });
      s.on("error", () => {});
      s.on("goaway", () => s.close());
      this.session = s;
    }
    return this.session;
  }

  private h2(req: FuzzRequest): Promise<FuzzAnswer> {
    const started = Date.now();
    return new Promise((resolve) => {
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      let status: number | undefined;
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (error?: string) => {
        if (settled) return;
        settled = true;
        resolve({ status, headers, trailers, body: Buffer.concat(chunks), error, ms: Date.now() - started });
      };
      try {
        const s = this.h2session().request({ ":method": req.method, ":path": req.path, ...req.headers });
        s.setTimeout(TIMEOUT_MS, () => {
          s.close(constants.NGHTTP2_CANCEL);
          done(`no answer within ${TIMEOUT_MS} ms`);
        });
        s.on("response", (h) => {
          status = Number(h[":status"]);
          headers = flat(h);
        });
        s.on("trailers", (t) => (trailers = flat(t)));
        s.on("data", (c: Buffer) => chunks.push(c));
        s.on("end", () => done());
        s.on("close", () => done(status === undefined ? `stream closed without an answer (rst code ${s.rstCode})` : undefined));
        s.on("error", (e) => done(`${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.trim()));
        s.end(req.body);
      } catch (e) {
        done(`client refused to send: ${(e as Error).message}`);
      }
    });
  }

  close(): void {
    this.agent.destroy();
    this.session?.destroy();
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight, and at most `perSecond` started per second. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>, perSecond = Infinity): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        const due = t0 + (i * 1000) / perSecond - Date.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}
