// The baselines every ratio of the report is taken against, measured in the
// same run: bare grpc-js, bare connect-node, our server with no interceptors,
// bare node:http JSON, raw bcrypt and crypto.verify (and our JWT verifier).
import { h2load, wrk } from "./load.js";
import { runPinned, startBaseline } from "./procs.js";
import type { Row } from "./report.js";
import { emptyRequest, grpcHeaders, IN_FLIGHT, log, QUICK, repeat, SECONDS, WARMUP } from "./run-settings.js";
import type { RunResult } from "./stats.js";

export interface Baselines {
  rows: Row[];
  /** Bare @grpc/grpc-js, Health/Check, 50 in flight. */
  grpcJs: RunResult;
  /** Bare node:http answering JSON, wrk with 50 connections. */
  httpJson: RunResult;
  /** Raw bcrypt cost 12 compares/s on the server core. */
  bcrypt: number;
}

export async function baselines(): Promise<Baselines> {
  const rows: Row[] = [];
  const healthCheck = (port: number) => () =>
    h2load({ url: `http://127.0.0.1:${port}/grpc.health.v1.Health/Check`, body: emptyRequest, headers: grpcHeaders, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP });

  log("baseline: bare grpc-js");
  const g = await startBaseline("bench/baselines/grpc-echo.ts");
  const grpcJs = await repeat(healthCheck(g.port)).finally(() => g.stop());
  rows.push({ scenario: "baseline: bare @grpc/grpc-js unary (Health/Check)", ...grpcJs });

  log("baseline: bare connect-node");
  const c = await startBaseline("bench/baselines/connect-echo.ts");
  const connect = await repeat(healthCheck(c.port)).finally(() => c.stop());
  rows.push({ scenario: "baseline: bare connect-node gRPC (Health/Check)", ...connect, ratio: connect.rps / grpcJs.rps, ratioOf: "grpc-js" });

  log("our server: platform/server.ts, no interceptors");
  const o = await startBaseline("bench/baselines/server-echo.ts");
  const ours = await repeat(healthCheck(o.port)).finally(() => o.stop());
  rows.push({ scenario: "platform/server.ts gRPC, no interceptors (Health/Check)", ...ours, ratio: ours.rps / grpcJs.rps, ratioOf: "grpc-js" });

  log("baseline: bare node:http JSON");
  const h = await startBaseline("bench/baselines/http-json.ts");
  const httpJson = await repeat(() => wrk({ url: `http://127.0.0.1:${h.port}/`, connections: 50, seconds: SECONDS })).finally(() => h.stop());
  rows.push({ scenario: "baseline: bare node:http JSON", ...httpJson });

  log("baseline: bcrypt-12 compares/s and crypto.verify ES256/s on the server core");
  const raw = JSON.parse(await runPinned("bench/baselines/crypto-rates.ts", [String(QUICK ? 3 : 6)])) as { bcrypt: number; bcryptConcurrency: number; raw: number; ours: number; remembered: number };
  rows.push({ scenario: `baseline: raw bcrypt cost 12 compares/s (${raw.bcryptConcurrency} in flight)`, rps: raw.bcrypt });
  rows.push({ scenario: "baseline: raw crypto.verify ES256/s", rps: raw.raw });
  const jwtCost = raw.raw / raw.ours;
  rows.push({ scenario: "JWT check per request, platform/auth/verifier.ts, signature checked every time (checks/s)", rps: raw.ours, ratio: jwtCost, ratioOf: "raw cost", target: "<= 1.5x", met: jwtCost <= 1.5 });
  rows.push({ scenario: "  the same verifier on a token it has verified before (remembered; expiry, key, revocation rechecked)", rps: raw.remembered, ratio: raw.raw / raw.remembered, ratioOf: "raw cost" });
  return { rows, grpcJs, httpJson, bcrypt: raw.bcrypt };
}

/** What the machine itself adds at an offered load: the bare grpc-js server under the same open loop as "GetMe at half load". */
export async function bareGrpcAtRate(rate: number): Promise<Row> {
  log(`reference: bare grpc-js at ${rate} req/s offered`);
  const g = await startBaseline("bench/baselines/grpc-echo.ts");
  const floor = await repeat(() =>
    h2load({ url: `http://127.0.0.1:${g.port}/grpc.health.v1.Health/Check`, body: emptyRequest, headers: grpcHeaders, connections: 2, streams: 64, seconds: SECONDS, warmupSeconds: WARMUP, rps: Math.max(1, Math.round(rate / 2)) }),
  ).finally(() => g.stop());
  return { scenario: `  reference: bare grpc-js at the same ${rate} req/s, same load generator`, ...floor };
}
