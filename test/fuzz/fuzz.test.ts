// The fuzz run of issue 15: seeded malformed REST (every route of
// gen/openapi.json), gRPC (h2c) and Connect (JSON and binary) requests for every
// method of gen/api.binpb, through the embedded edge and through Envoy, 5,000 per
// edge. Whatever was sent: no 5xx (nor a gRPC INTERNAL, UNKNOWN, UNAVAILABLE,
// DATA_LOSS), no stack trace or internal message, every REST error in the one
// JSON shape {"code", "message"[, "details"]}, every Connect error in Connect's,
// every gRPC answer with a grpc-status. FUZZ_SEED changes the requests; a failure
// lists each kind of problem with a reproducer. docs/fuzz.md.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGE_KINDS, loginAdmin, startTarget, type Target } from "../edge/conformance/target.js";
import { signedInUser } from "./accounts.js";
import { grpcStatus, judge, report, type Finding } from "./oracle.js";
import { FUZZ_SEED, Rng } from "./random.js";
import { brokenBody, restCases, type FuzzRequest } from "./rest-cases.js";
import { connectCases, grpcCases } from "./rpc-cases.js";
import { pool, Sender, type FuzzAnswer } from "./send.js";

const COUNTS = { rest: 2600, grpc: 1200, connect: 1200 } as const;
const CONCURRENCY = 8;
// Below Envoy's local backstop (envoy/settings.yaml local_rate_limit: 200/s after a 400 burst):
// a fuzz run is not a load test, and a refused request tests nothing.
const PER_SECOND = 150;
type Proto = keyof typeof COUNTS;

for (const kind of EDGE_KINDS) {
  describe(`fuzz (${kind}): ${COUNTS.rest + COUNTS.grpc + COUNTS.connect} malformed requests, seed ${FUZZ_SEED}`, function () {
    this.timeout(300_000);
    let t: Target;
    const findings: Finding[] = [];
    const statuses: Record<Proto, Map<string, number>> = { rest: new Map(), grpc: new Map(), connect: new Map() };
    let rateLimited = 0;
    let sent = 0;

    before(async function () {
      t = await startTarget(kind);
      // The admin widens what authenticated reads reach; the run goes on without one.
      const admin = await loginAdmin(t).catch((err: Error) => void console.log(`      fuzz ${kind}: no admin token (${err.message.split("\n")[0]})`));
      const [user, victim] = await Promise.all([signedInUser(t), signedInUser(t)]);
      const tokens = { user: user.access, victim: victim.access, admin: admin?.access };
      const rng = new Rng(FUZZ_SEED);
      const cases: FuzzRequest[] = [
        ...restCases(COUNTS.rest, rng, tokens),
        ...grpcCases(COUNTS.grpc, rng, tokens),
        ...connectCases(COUNTS.connect, rng, tokens, brokenBody),
      ];
      const sender = new Sender(new URL(t.url));
      const log: string[] = [];
      const started = Date.now();
      try {
        await pool(cases, CONCURRENCY, async (req) => {
          const res: FuzzAnswer = await sender.send(req);
          sent++;
          const gs = grpcStatus(res);
          const key = `${res.status ?? "reset"}${gs !== undefined ? `/grpc-status ${gs}` : ""}`;
          statuses[req.proto].set(key, (statuses[req.proto].get(key) ?? 0) + 1);
          if (res.status === 429 || gs === "8" && /rate limit|local_rate_limited/.test(String(res.headers["grpc-message"] ?? ""))) rateLimited++;
          findings.push(...judge(req, res));
          log.push(JSON.stringify({ proto: req.proto, method: req.method, path: req.path, what: req.what, status: res.status ?? res.error, grpcStatus: gs, body: res.body.toString("utf8").slice(0, 200) }));
        }, PER_SECOND);
      } finally {
        sender.close();
      }
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const summary = (Object.keys(statuses) as Proto[]).map((p) => `  ${p}: ${[...statuses[p]].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s} x${n}`).join(", ")}`);
      const file = join(tmpdir(), `acme-fuzz-${kind}.txt`);
      writeFileSync(file, `${report(findings)}\n`);
      writeFileSync(file.replace(/\.txt$/, ".jsonl"), `${log.join("\n")}\n`);
      console.log(`      fuzz ${kind}: ${sent} requests in ${seconds} s, ${findings.length} findings (${file}; every answer: .jsonl)\n${summary.join("\n")}`);
    });

    after(async () => t?.stop());

    it(`sent every request, and the edge's rate limits refused under 1% of them`, () => {
      assert.equal(sent, COUNTS.rest + COUNTS.grpc + COUNTS.connect);
      assert.ok(rateLimited < sent / 100, `${rateLimited} of ${sent} were refused by the rate limits`);
    });

    for (const proto of Object.keys(COUNTS) as Proto[]) {
      for (const k of ["5xx", "internal text", "error shape", "no answer"] as const) {
        it(`${proto}: ${k === "5xx" ? "no 5xx" : k === "internal text" ? "no stack trace or internal message" : k === "error shape" ? "one error shape" : "an answer to every request"}`, () => {
          const mine = findings.filter((f) => f.req.proto === proto && f.kind === k);
          assert.equal(mine.length, 0, `${mine.length} of ${COUNTS[proto]} ${proto} requests:\n${report(mine)}`);
        });
      }
    }
  });
}
