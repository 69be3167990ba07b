// 3,000 idle or stalled connections against the real process (app/main.ts,
// short timeouts from the SERVER_* variables): 1,000 that send nothing, 1,000
// that send half an HTTP/1.1 request's headers, 1,000 that send the HTTP/2
// preface and no frame. Another client keeps getting answers within 1 s the
// whole time (gRPC on one HTTP/2 session and REST on a new HTTP/1.1 connection
// each time), and the server closes every stalled connection by its timeouts.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/health/v1/health_pb.js";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { startProduct, type RunningProduct } from "../observability/support/child.js";

const HEADERS_TIMEOUT_MS = 2000;
const IDLE_TIMEOUT_MS = 3000;
const PER_KIND = 1000;

/** The stalled clients' process (its header says what it does). */
const STALLER = fileURLToPath(new URL("./stalled-clients.mjs", import.meta.url));

describe("platform: 3,000 idle or stalled connections against the real process", function () {
  this.timeout(120_000);
  let product: RunningProduct;
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "acme-stalled-"));
    product = await startProduct([], {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      METRICS_PORT: "off",
      OTEL_SDK_DISABLED: "true",
      SERVER_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      SERVER_REQUEST_TIMEOUT_MS: "3000",
      SERVER_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
    });
  });
  after(async () => {
    await product?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps answering another client within 1 s and closes every stalled connection by its timeouts", async () => {
    const port = Number(new URL(product.url).port);
    const health = createClient(Health, createGrpcTransport({ baseUrl: product.url }));
    // The client's session is open and both paths warm before it is timed.
    await health.check({ service: "" });
    await (await fetch(`${product.url}/health`)).arrayBuffer();
    const latencies: number[] = [];
    const slow: string[] = [];
    let probing = true;
    const start = Date.now();
    const timed = async (what: string, fn: () => Promise<unknown>) => {
      const t0 = Date.now();
      await fn();
      const ms = Date.now() - t0;
      latencies.push(ms);
      if (ms > 300) slow.push(`${what} ${ms} ms at +${t0 - start} ms`);
    };
    const probe = (async () => {
      for (let i = 0; i < 400 && probing; i++) {
        await timed("gRPC", () => health.check({ service: "" }, { timeoutMs: 5000 }));
        await timed("REST", async () => {
          const res = await fetch(`${product.url}/health`, { headers: { connection: "close" }, signal: AbortSignal.timeout(5000) });
          assert.equal(res.status, 200);
          await res.arrayBuffer();
        });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const kinds: [string, string | null][] = [
      ["nothing", null],
      ["half HTTP/1.1 headers", "POST /v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"],
      ["HTTP/2 preface, no frame", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    ];
    await new Promise((r) => setTimeout(r, 1000)); // the client alone first
    const staller = spawn(process.execPath, [STALLER, String(port), String(PER_KIND), JSON.stringify(kinds)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    staller.stdout.on("data", (c) => (out += c));
    const finished = await Promise.race([
      new Promise<number | null>((r) => staller.once("exit", r)),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 40_000)),
    ]);
    if (finished === "timeout") staller.kill("SIGKILL");
    probing = false;
    await probe;
    assert.notEqual(finished, "timeout", `stalled connections still open after 40 s: ${out}`);
    const { openedIn, closedAfter } = JSON.parse(out.trim().split("\n").at(-1)!) as { openedIn: number; closedAfter: Record<string, number[]> };

    const byKind = new Map(Object.entries(closedAfter));
    const all = [...byKind.values()].flat();
    const summary = [...byKind].map(([k, v]) => `${k}: ${v.filter((x) => x >= 0).length} opened, closed after ${Math.min(...v)}..${Math.max(...v)} ms`);
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(`      ${all.length} connections opened in ${openedIn} ms; ${summary.join("; ")}`);
    console.log(`      other client: ${latencies.length} calls (gRPC on one session, REST on a new connection each), p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms${slow.length ? `; over 300 ms: ${slow.join(", ")}` : ""}`);

    assert.equal(all.length, 3 * PER_KIND);
    assert.equal(all.filter((x) => x < 0).length, 0, "every connection was opened");
    assert.ok(latencies.length >= 20, `the other client made ${latencies.length} calls`);
    assert.ok(sorted.at(-1)! < 1000, `the other client waited up to ${sorted.at(-1)} ms`);
    for (const [kind, times] of byKind) {
      const bound = (kind.startsWith("HTTP/2") ? IDLE_TIMEOUT_MS : HEADERS_TIMEOUT_MS) + openedIn + 3000;
      assert.ok(Math.max(...times) < bound, `${kind}: the last closed after ${Math.max(...times)} ms (bound ${bound})`);
    }
  });
});
