// The operator's listener: GET /metrics (Prometheus text) on a port of its own,
// bound to loopback by default, never on the public port. Metrics describe the
// whole system (login failures, token refusals, rate limits, pool sizes): a
// client of the API has no business reading them.
import http from "node:http";
import type net from "node:net";
import type { Logger } from "../logger.js";
import type { HttpHandler } from "../server.js";

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: { port: number; host: string; handler: HttpHandler; log: Logger }): Promise<MetricsServer> {
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    Promise.resolve(opts.handler(req, res))
      .then((answered) => {
        if (answered) return;
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: 5, message: "no route matches this path" }));
      })
      .catch((err) => {
        opts.log.error("metrics listener failed", { err });
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: 13, message: "internal error" }));
      });
  });
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  return {
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
