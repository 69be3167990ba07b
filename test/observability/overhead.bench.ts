// What observability costs per RPC (not part of the test run):
//   node --import tsx test/observability/overhead.bench.ts [calls]
// One process, sequential unary calls of a trivial handler, three setups:
//   bare         no observability interceptors
//   obs, off     interceptors (metrics, access log to a discarding logger), no SDK: the default without OTEL_*
//   obs, traced  the same with an SDK tracer provider (BatchSpanProcessor, exporter discarding the spans)
// measured twice: through an in-process router transport (interceptor cost
// alone) and over h2c gRPC on loopback (client + server interceptors, with
// the network stack as the yardstick).
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createClient, createRouterTransport, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { createLogger } from "../../platform/logger.js";
import { startServer } from "../../platform/server.js";
import { installLogContext } from "../../platform/telemetry/context.js";
import { clientObservability, serverObservability } from "../../platform/telemetry/tracing.js";

const N = Number(process.argv[2] ?? 5000);
let logged = 0;
const log = createLogger({ service: "bench" }, { pretty: false, write: () => void logged++ });
installLogContext();

const routes = (r: ConnectRouter) =>
  r.service(UserInternalService, {
    checkUser: (req) => ({ exists: req.userId.length > 0, active: true }),
  });

async function time(label: string, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(500, N); i++) await call(); // warm up
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await call();
  const us = Number(process.hrtime.bigint() - t) / 1000 / N;
  console.log(`  ${label.padEnd(34)} ${us.toFixed(1).padStart(7)} µs/call`);
  return us;
}

async function round(name: string, server: Interceptor[], client: Interceptor[]) {
  const local = createClient(UserInternalService, createRouterTransport(routes, { router: { interceptors: server } }));
  const inProc = await time(`${name}, in process`, () => local.checkUser({ userId: "u" }));
  const srv = await startServer({ port: 0, host: "127.0.0.1", routes, interceptors: server, log });
  const remote = createClient(UserInternalService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${srv.port}`, interceptors: client }));
  const overNet = await time(`${name}, h2c gRPC`, () => remote.checkUser({ userId: "u" }));
  await srv.close(100);
  return { inProc, overNet };
}

function enableTracing() {
  const discard: SpanExporter = { export: (_s, done) => done({ code: 0 }), shutdown: async () => {} };
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard, { maxQueueSize: 65536, maxExportBatchSize: 512, scheduledDelayMillis: 200 })] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return provider;
}

console.log(`${N} sequential unary calls per setup (Node ${process.version})`);
const bare = await round("bare", [], []);
const off = await round("obs, tracing off", [serverObservability({ log })], [clientObservability()]);
const provider = enableTracing();
const on = await round("obs, traced", [serverObservability({ log })], [clientObservability()]);
await provider.shutdown();
console.log("overhead per RPC (µs):");
console.log(`  in process (server interceptor):     off +${(off.inProc - bare.inProc).toFixed(1)}, traced +${(on.inProc - bare.inProc).toFixed(1)}`);
console.log(`  h2c gRPC (client + server):          off +${(off.overNet - bare.overNet).toFixed(1)}, traced +${(on.overNet - bare.overNet).toFixed(1)}`);
console.log(`access-log lines written: ${logged}`);
