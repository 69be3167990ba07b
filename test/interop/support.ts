// Shared helpers for the foreign-client suites: each client is a separate
// process started with execFile (async: the server runs in this process, so a
// synchronous spawn would block its event loop and deadlock).
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Context } from "mocha";
import { sharedEdgeStack } from "../support/edge-stack.js";
import { startTestSystem } from "../support/system.js";
import { makeProduct, makeStackProduct, type ProductSpec } from "../support/products.js";

export const root = new URL("../..", import.meta.url).pathname;
export const protoRoot = join(root, "proto");
export const googleProtos = join(root, "node_modules/google-proto-files");
/** Compiled artefacts, keyed by content hash; npm ci clears them. */
export const cacheRoot = join(root, "node_modules/.cache/acme-interop");

/** The googleapis files our contracts import, plus google.rpc for error details. */
export const googleApiFiles = [
  "google/api/annotations.proto",
  "google/api/http.proto",
  "google/api/httpbody.proto",
  "google/rpc/status.proto",
  "google/rpc/error_details.proto",
];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command asynchronously; never throws on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? root, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 << 20, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== "number") {
          if ((err as { killed?: boolean }).killed) return resolve({ code: -1, stdout, stderr: `${stderr}\n(killed: timeout)` });
          return reject(err);
        }
        resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Fails with the command's output when it did not exit 0. */
export function ok(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`.trim());
  return r.stdout;
}

/** Contract .proto files, relative to proto/ (sorted). */
export function contractFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? walk(p) : n.endsWith(".proto") ? [relative(protoRoot, p)] : [];
      });
  return walk(protoRoot);
}

/** Hash of the contract, the googleapis files and any extra inputs: the cache key. */
export function inputsHash(extra: string[] = []): string {
  const h = createHash("sha256");
  for (const f of contractFiles()) h.update(f).update(readFileSync(join(protoRoot, f)));
  for (const f of googleApiFiles) h.update(f).update(readFileSync(join(googleProtos, f)));
  for (const e of extra) h.update(e);
  return h.digest("hex").slice(0, 16);
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Skips the suite when a tool it needs is missing (rest.test.ts: curl), naming
 * the Debian packages. In CI (CI=true, as .ci/run runs) or with
 * ACME_INTEROP_REQUIRED=1 a missing tool fails instead. The Python and Go
 * clients do not use it: their toolchains come from `npm run tools`, and a
 * missing one always fails the suite.
 */
export function skipWithout(ctx: Context, missing: string[], packages: string[]) {
  if (missing.length === 0) return;
  const msg = `missing ${missing.join(", ")}: apt-get install -y ${packages.join(" ")}`;
  if (process.env.CI === "true" || process.env.ACME_INTEROP_REQUIRED === "1") throw new Error(`${msg} (required in CI)`);
  console.log(`      skipped: ${msg}`);
  ctx.skip();
}

/**
 * A rate-limit config like envoy/ratelimit/config.yaml with every limit raised:
 * the clients here prove the protocols, not the limits (3 requests/s per user
 * would throttle a scripted flow).
 */
export function relaxedRateLimits(dir: string): string {
  const text = readFileSync(join(root, "envoy/ratelimit/config.yaml"), "utf8").replace(/requests_per_unit:\s*\d+/g, "requests_per_unit: 1000000");
  const file = join(ensureDir(dir), "ratelimit.yaml");
  writeFileSync(file, text);
  return file;
}

export const uniqueEmail = (who: string) => `${who}-${randomBytes(4).toString("hex")}@example.com`;

/** Parses the JSON-lines report the Python and Go clients print (one object per step). */
/**
 * The flow every foreign client runs (register, login, create twice, get, then the
 * errors), checked from its steps. `code` spells a status code as that language does.
 */
export function expectClientFlow(s: Map<string, Record<string, unknown>>, email: string, totalCents: number, code: (name: "NotFound" | "InvalidArgument" | "Unauthenticated" | "DeadlineExceeded") => string): void {
  assert.equal(s.get("register")?.status, "accepted");
  assert.equal(s.get("login")?.email, email);
  assert.equal(s.get("login")?.tokenType, "Bearer");
  const created = s.get("create")!;
  assert.equal(created.userId, s.get("login")?.userId);
  assert.equal(created.totalCents, totalCents);
  assert.equal(created.status, "ORDER_STATUS_PENDING");
  assert.match(String(created.createdAt), /^\d{4}-\d\d-\d\dT/);
  assert.equal(s.get("create-again")?.id, created.id, "same request_id, same order");
  assert.equal(s.get("get")?.id, created.id);
  assert.equal(s.get("not-found")?.code, code("NotFound"));
  const invalid = s.get("invalid-argument")!;
  assert.equal(invalid.code, code("InvalidArgument"));
  assert.ok(
    (invalid.fieldViolations as { field: string }[]).some((v) => v.field === "lines[0].quantity"),
    `google.rpc.BadRequest names lines[0].quantity: ${JSON.stringify(invalid)}`,
  );
  assert.equal(s.get("unauthenticated")?.code, code("Unauthenticated"));
  assert.equal(s.get("deadline")?.code, code("DeadlineExceeded"));
  assert.ok(s.has("done"));
}

export function steps(stdout: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const o = JSON.parse(line) as Record<string, unknown>;
    out.set(String(o.step), o);
  }
  return out;
}

/** True when `cmd` is on PATH. */
export async function onPath(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`]).catch(() => ({ code: 1 }))).code === 0;
}

/** Where a foreign client connects: plaintext gRPC over HTTP/2 (h2c, prior knowledge). */
export interface ClientTarget {
  name: string;
  /** host:port */
  grpcAddress: string;
}

export type RunningTarget = ClientTarget & {
  /** A catalogue product on sale there, made by an admin (orders name products); its id. */
  product(spec: ProductSpec): Promise<string>;
  stop(): Promise<void>;
};

/**
 * The targets each foreign-client suite (python.test.ts, go.test.ts) runs its
 * flow against, one describe block and one `it` per name. Each name needs a
 * resolver in targetResolvers.
 */
export const CLIENT_TARGET_NAMES = ["direct", "envoy"] as const;

/**
 * Starts (or finds) a target and returns its address with a stop() that undoes
 * what it started. Called in the target's before() hook, stopped in after().
 */
export const targetResolvers: Record<string, () => Promise<RunningTarget>> = {
  /** The real Envoy in front of the services as separate processes (test/support/edge-stack.ts), rate limits relaxed. */
  envoy: async () => {
    const dir = mkdtempSync(join(tmpdir(), "acme-target-"));
    const stack = await sharedEdgeStack();
    await stack.setRateLimitConfig(relaxedRateLimits(dir));
    return {
      name: "envoy",
      grpcAddress: `127.0.0.1:${stack.ports.envoy}`,
      product: (spec) => makeStackProduct(stack, spec),
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  /** The whole system in this process on a random port, rate limits relaxed. */
  direct: async () => {
    const dir = mkdtempSync(join(tmpdir(), "acme-target-"));
    try {
      const t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
      return {
        name: "direct",
        grpcAddress: t.url.replace(/^https?:\/\//, ""),
        product: async (spec) => (await makeProduct(t, spec)).id,
        stop: async () => {
          await t.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  },
};

/** Resolves one target by name; an unknown name is an error. */
export async function resolveTarget(name: string): Promise<RunningTarget> {
  const resolve = targetResolvers[name];
  if (!resolve) throw new Error(`no resolver for client target "${name}" (targetResolvers in test/interop/support.ts)`);
  const target = await resolve();
  if (!/^(\[[0-9a-fA-F:.]+\]|[^/:\s]+):\d+$/.test(target.grpcAddress)) {
    await target.stop();
    throw new Error(`client target "${name}": grpcAddress must be host:port, got ${JSON.stringify(target.grpcAddress)}`);
  }
  return target;
}

/** Every target of CLIENT_TARGET_NAMES (or of `names`), resolved in order; stop each when done. */
export async function clientTargets(names: readonly string[] = CLIENT_TARGET_NAMES): Promise<RunningTarget[]> {
  const out: RunningTarget[] = [];
  try {
    for (const name of names) out.push(await resolveTarget(name));
  } catch (err) {
    await Promise.all(out.map((t) => t.stop()));
    throw err;
  }
  return out;
}
