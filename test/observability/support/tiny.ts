// A tiny product for the observability unit tests: two of the contract's
// internal services with test handlers, served by platform/server.ts with the
// observability interceptor, plus a REST-like handler standing in for the
// edge (it forwards the client's traceparent, as the real edge does, and calls
// the services through an in-process router transport).
//   UserInternalService/CheckUser -> (gRPC, platform/clients.ts) OrderInternalService/MarkOwnerDeleted
//   MarkOwnerDeleted: userId "missing" -> NOT_FOUND, "boom" -> a plain error (INTERNAL), else ok
//   GET /v1/check/{id} -> CheckUser in process
import { Code, ConnectError, createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { OrderInternalService } from "../../../gen/acme/order/v1/order_pb.js";
import { UserInternalService } from "../../../gen/acme/user/v1/user_pb.js";
import { grpcTransport } from "../../../platform/clients.js";
import { errorInterceptor } from "../../../platform/errors.js";
import type { Logger } from "../../../platform/logger.js";
import { startServer, type RunningServer } from "../../../platform/server.js";
import { metricsHandler } from "../../../platform/telemetry/metrics.js";
import { traceHttp } from "../../../platform/telemetry/http-server.js";
import { propagateContext } from "../../../platform/telemetry/rpc-client.js";
import { serverObservability } from "../../../platform/telemetry/rpc-server.js";

export interface Tiny {
  readonly server: RunningServer;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startTiny(log: Logger): Promise<Tiny> {
  let selfUrl = "";
  const orders = () => createClient(OrderInternalService, grpcTransport(selfUrl, [], 3000));
  const routes = (router: ConnectRouter) => {
    router.service(UserInternalService, {
      async checkUser(req) {
        log.info("checking user", { email: "alice@example.com", password: "hunter2", accessToken: "eyJ.secret" });
        const r = await orders().markOwnerDeleted({ userId: req.userId });
        return { exists: r.updated > 0, active: true };
      },
    });
    router.service(OrderInternalService, {
      async markOwnerDeleted(req) {
        if (req.userId === "missing") throw new ConnectError("no such user", Code.NotFound);
        if (req.userId === "boom") throw new Error('relation "orders" does not exist');
        log.info("marking orders");
        return { updated: 1 };
      },
    });
  };
  const rpc = serverObservability({ log });
  const interceptors = [rpc, errorInterceptor(log)];
  const local = createRouterTransport(routes, { router: { interceptors }, transport: { interceptors: [propagateContext()] } });
  const users = createClient(UserInternalService, local);

  const rest = traceHttp(
    [
      async (req, res) => {
        const m = /^\/v1\/check\/([^/?]+)/.exec(req.url ?? "");
        if (!m) return false;
        const headers = new Headers();
        const tp = req.headers.traceparent;
        if (typeof tp === "string") headers.set("traceparent", tp); // forwarded, like the edge does
        try {
          const r = await users.checkUser({ userId: m[1] }, { headers });
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ exists: r.exists }));
        } catch (err) {
          const code = ConnectError.from(err).code;
          res.writeHead(code === Code.NotFound ? 404 : 500, { "content-type": "application/json" });
          res.end(JSON.stringify({ code }));
        }
        return true;
      },
    ],
    { log },
  );

  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    routes,
    interceptors,
    httpHandlers: [metricsHandler(), rest],
    log,
  });
  selfUrl = `http://127.0.0.1:${server.port}`;
  return { server, url: selfUrl, stop: () => server.close(1000) };
}
