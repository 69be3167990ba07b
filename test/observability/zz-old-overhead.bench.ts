// What observability costs per RPC (not part of the test run):
//   node --import tsx test/observability/overhead.bench.ts [calls]
// One process, sequential unary calls of a trivial handler, three setups:
//   bare         no observability interceptors
//   obs, off     interceptors (metrics, access log to a discarding logger), no SDK: the default without OTEL_*
//   obs, traced  the same with an SDK tracer provider (BatchSpanProcessor, exporter discarding the spans)
// measured through an in-process router transport and over h2c gRPC on
// loopback (client + server interceptors, the network stack as the yardstick),
// then the interceptors alone, called directly (the steadiest number on a busy
// machine).
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createClient, createRouterTransport, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { createLogger } from "../../platform/logger.js";
import { startServer } from "../../platform/server.js";
import { installLogContext } from "../../platform/telemetry/zz-old/context.js";
import { clientObservability, serverObservability } from "../../platform/telemetry/zz-old/tracing.js";

const N = Number(process.argv[2] ?? 5000);
let logged = 0;
const log = createLogger({ service: "bench" }, { pretty: false, write: () => void logged++ });
installLogContext();

const routes = (r: ConnectRouter) =>
  r.service(UserInternalService, {
    checkUser: (req) => ({ exists: req.userId.length > 0, active: true }),
  });

interface Setup {
  name: string;
  tracing: boolean;
  server: Interceptor[];
  client: Interceptor[];
}

const discard: SpanExporter = { export: (_s, done) => done({ code: 0 }), shutdown: async () => {} };
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard, { maxQueueSize: 65536, maxExportBatchSize: 512, scheduledDelayMillis: 200 })] });
const contextManager = new AsyncLocalStorageContextManager().enable();
function setTracing(on: boolean) {
  trace.disable();
  context.disable();
  propagation.disable();
  if (!on) return;
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

const setups: Setup[] = [
  { name: "bare", tracing: false, server: [], client: [] },
  { name: "obs, tracing off", tracing: false, server: [serverObservability({ log })], client: [clientObservability()] },
  { name: "obs, traced", tracing: true, server: [serverObservability({ log })], client: [clientObservability()] },
];

const ROUNDS = 7;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(call: () => Promise<unknown>, n: number) {
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await call();
  const wall = Number(process.hrtime.bigint() - t) / 1000 / n;
  const c = process.cpuUsage(cpu);
  return { wall, cpu: (c.user + c.system) / n };
}

console.log(`${ROUNDS} interleaved rounds x ${N} sequential unary calls per setup (Node ${process.version}); medians`);
const results: Record<string, { inProc: { wall: number; cpu: number }[]; net: { wall: number; cpu: number }[] }> = {};
const built = await Promise.all(
  setups.map(async (s) => {
    const local = createClient(UserInternalService, createRouterTransport(routes, { router: { interceptors: s.server } }));
    const srv = await startServer({ port: 0, host: "127.0.0.1", routes, interceptors: s.server, log });
    const remote = createClient(UserInternalService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${srv.port}`, interceptors: s.client }));
    results[s.name] = { inProc: [], net: [] };
    return { s, local, remote, srv };
  }),
);
for (let r = 0; r <= ROUNDS; r++) {
  for (const b of built) {
    setTracing(b.s.tracing);
    const n = r === 0 ? Math.min(500, N) : N; // round 0 warms up
    const a = await measure(() => b.local.checkUser({ userId: "u" }), n);
    const c = await measure(() => b.remote.checkUser({ userId: "u" }), n);
    if (r > 0) {
      results[b.s.name].inProc.push(a);
      results[b.s.name].net.push(c);
    }
  }
}
for (const b of built) await b.srv.close(100);
setTracing(false);

const row = (name: string) => {
  const x = results[name];
  return {
    inWall: median(x.inProc.map((v) => v.wall)),
    inCpu: median(x.inProc.map((v) => v.cpu)),
    netWall: median(x.net.map((v) => v.wall)),
    netCpu: median(x.net.map((v) => v.cpu)),
  };
};
const f = (n: number) => n.toFixed(1).padStart(7);
console.log("                        in process (wall / cpu µs)   h2c gRPC (wall / cpu µs)");
for (const s of setups) {
  const x = row(s.name);
  console.log(`  ${s.name.padEnd(20)} ${f(x.inWall)} / ${f(x.inCpu)}            ${f(x.netWall)} / ${f(x.netCpu)}`);
}
const base = row("bare");
for (const name of ["obs, tracing off", "obs, traced"]) {
  const x = row(name);
  console.log(`  overhead, ${name.padEnd(17)} in process +${(x.inCpu - base.inCpu).toFixed(1)} µs cpu; h2c +${(x.netCpu - base.netCpu).toFixed(1)} µs cpu, +${(x.netWall - base.netWall).toFixed(1)} µs wall`);
}
// The interceptors alone, called directly with a trivial next(): no transport, no network.
{
  const M = 50_000;
  const fakeReq = () =>
    ({
      stream: false,
      service: UserInternalService,
      method: UserInternalService.method.checkUser,
      url: "http://127.0.0.1:50052/acme.user.v1.UserInternalService/CheckUser",
      header: new Headers({ "content-type": "application/grpc" }),
      contextValues: undefined,
      message: undefined,
      signal: new AbortController().signal,
    }) as never;
  const res = { stream: false, message: {}, header: new Headers(), trailer: new Headers() };
  const next = async () => res as never;
  const srv = serverObservability({ log })(next);
  const cli = clientObservability()(next);
  const direct = async (label: string, fn: (r: never) => Promise<unknown>) => {
    const samples: number[] = [];
    for (let r = 0; r < 5; r++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < M; i++) await fn(fakeReq());
      const c = process.cpuUsage(cpu);
      samples.push((c.user + c.system) / M);
    }
    // Subtract building the fake request and awaiting next() alone.
    const bareCpu = process.cpuUsage();
    for (let i = 0; i < M; i++) {
      fakeReq();
      await next();
    }
    const b = process.cpuUsage(bareCpu);
    const base = (b.user + b.system) / M;
    console.log(`  ${label.padEnd(40)} ${(median(samples) - base).toFixed(2)} µs cpu/call`);
  };
  console.log("interceptors called directly (median of 5 x 50k):");
  setTracing(false);
  await direct("server interceptor, tracing off", srv);
  await direct("client interceptor, tracing off", cli);
  setTracing(true);
  await direct("server interceptor, traced", srv);
  await direct("client interceptor, traced", cli);
  setTracing(false);
}
console.log(`access-log lines written: ${logged}`);
await provider.shutdown();
