// Decompression bombs against the real process (app/main.ts, all services
// and the embedded edge, on the test Postgres and Redis): about 1 MB of gzip
// that inflates to 1 GiB, sent over gRPC (h2c), Connect, gRPC-Web and REST.
// Each is refused (RESOURCE_EXHAUSTED / 413 with the JSON error body) and the
// process's peak resident memory while serving it (VmHWM, reset before each
// through /proc/<pid>/clear_refs) stays under 2x MAX_MESSAGE_BYTES above what
// it was before: the bomb is inflated only up to the limit.
import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import { Code } from "@connectrpc/connect";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { startProduct } from "../observability/support/child.js";
import { grpcFrame, grpcMessage, grpcStatus, grpcWebStatus, h2Call, makeBomb } from "./wire.js";

// Configured above the 4 MiB default: the process's own overhead while refusing (a few MiB,
// more on a loaded machine) is then small beside the bound, which stays 2x the configured limit.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const LOGIN = "/acme.auth.v1.AuthService/Login";

const kib = (pid: number, field: "VmRSS" | "VmHWM") => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

/** Peak RSS growth (bytes) of `pid` while `fn` runs: VmHWM after, reset to the current RSS before. */
async function peakGrowth<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; growth: number }> {
  writeFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
  const before = kib(pid, "VmRSS");
  const result = await fn();
  return { result, growth: (kib(pid, "VmHWM") - before) * 1024 };
}

type Sender = (url: string, body: Buffer) => Promise<{ code: number | string; status?: number; body?: unknown }>;

const GRPC: Sender = async (url, body) => {
  const a = await h2Call(url, LOGIN, { "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" }, grpcFrame(body, true));
  return { code: grpcStatus(a), body: grpcMessage(a) };
};
const CONNECT: Sender = async (url, body) => {
  const res = await fetch(url + LOGIN, { method: "POST", headers: { "content-type": "application/proto", "connect-protocol-version": "1", "content-encoding": "gzip" }, body: body as BodyInit });
  return { status: res.status, code: ((await res.json()) as { code: string }).code };
};
const GRPC_WEB: Sender = async (url, body) => {
  const a = await h2Call(url, LOGIN, { "content-type": "application/grpc-web+proto", "grpc-encoding": "gzip" }, grpcFrame(body, true));
  return { code: grpcWebStatus(a).code };
};
const REST: Sender = async (url, body) => {
  const res = await fetch(`${url}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: body as BodyInit });
  const json = (await res.json()) as { code: number };
  return { status: res.status, code: json.code, body: json };
};

describe("platform: a 1 GiB gzip bomb over every protocol, against the real process", function () {
  this.timeout(180_000);
  let bomb: Buffer;
  const measured: string[] = [];
  const small = zlib.gzipSync(Buffer.from([0x0a, 0x01, 0x61]));

  before(async () => {
    bomb = await makeBomb();
    assert.ok(bomb.length < 1.2 * 1024 * 1024, `the bomb is ${bomb.length} bytes`);
  });
  after(() => {
    if (measured.length) console.log(`      peak RSS growth per 1 GiB bomb (${bomb.length} bytes gzip): ${measured.join(", ")}`);
  });

  /**
   * A fresh process (nothing freed earlier for the bomb to reuse), warmed with one small gzip
   * request on the path, then the bomb twice: the answers and the largest peak RSS growth.
   */
  async function bombed(send: Sender, env: Record<string, string> = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), "acme-bomb-"));
    const product = await startProduct([], {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      DATA_DIR: dataDir,
      BCRYPT_COST: "10",
      LOG_LEVEL: "warn",
      METRICS_PORT: "off",
      OTEL_SDK_DISABLED: "true",
      MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
      ...env,
    });
    try {
      await send(product.url, small);
      const answers = [];
      let growth = 0;
      for (let i = 0; i < 2; i++) {
        const r = await peakGrowth(product.child.pid!, () => send(product.url, bomb));
        answers.push(r.result);
        growth = Math.max(growth, r.growth);
      }
      assert.equal((await fetch(`${product.url}/health`)).status, 200, "the process still answers");
      return { answers, growth };
    } finally {
      await product.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  const bounded = (what: string, growth: number) => {
    measured.push(`${what} ${(growth / 1024 / 1024).toFixed(1)} MiB`);
    assert.ok(growth < 2 * MAX_MESSAGE_BYTES, `${what}: peak RSS grew by ${growth} bytes (limit ${2 * MAX_MESSAGE_BYTES})`);
  };

  it("gRPC (h2c, grpc-encoding gzip): RESOURCE_EXHAUSTED, peak RSS growth under 2x MAX_MESSAGE_BYTES", async () => {
    const { answers, growth } = await bombed(GRPC);
    for (const a of answers) assert.equal(a.code, Code.ResourceExhausted, String(a.body));
    bounded("gRPC", growth);
  });

  it("Connect (content-encoding gzip): HTTP 429 resource_exhausted, peak RSS growth under 2x MAX_MESSAGE_BYTES", async () => {
    const { answers, growth } = await bombed(CONNECT);
    for (const a of answers) assert.deepEqual([a.status, a.code], [429, "resource_exhausted"]);
    bounded("Connect", growth);
  });

  it("gRPC-Web (grpc-encoding gzip): RESOURCE_EXHAUSTED, peak RSS growth under 2x MAX_MESSAGE_BYTES", async () => {
    const { answers, growth } = await bombed(GRPC_WEB);
    for (const a of answers) assert.equal(a.code, Code.ResourceExhausted);
    bounded("gRPC-Web", growth);
  });

  it("REST (content-encoding gzip): 413 with the JSON error body, peak RSS growth under 2x MAX_MESSAGE_BYTES", async () => {
    const { answers, growth } = await bombed(REST);
    for (const a of answers) {
      assert.equal(a.status, 413);
      assert.deepEqual(a.body, { code: Code.ResourceExhausted, message: "request body too large" });
    }
    bounded("REST", growth);
  });

  it("the measure sees inflating: with MAX_MESSAGE_BYTES at 64 MiB the same gRPC bomb grows the process by more than 32 MiB", async () => {
    const { answers, growth } = await bombed(GRPC, { MAX_MESSAGE_BYTES: String(64 * 1024 * 1024) });
    for (const a of answers) assert.equal(a.code, Code.ResourceExhausted);
    measured.push(`gRPC at 64 MiB limit ${(growth / 1024 / 1024).toFixed(1)} MiB`);
    assert.ok(growth > 32 * 1024 * 1024, `peak RSS grew by ${growth} bytes only`);
  });
});
