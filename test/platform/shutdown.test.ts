// Graceful shutdown: in-flight requests finish, new connections are refused,
// health reports NOT_SERVING while draining; `npm start` stops cleanly on
// SIGTERM even while it is still starting.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/servers.js";
import { startTestSystem } from "../support/system.js";

describe("graceful shutdown", () => {
  it("finishes an in-flight register (bcrypt + account + profile) and then refuses new calls", async () => {
    const t = await startTestSystem({ edge: false });
    const auth = t.auth();
    const inflight = auth.register({ email: "drain@example.com", password: "correct horse battery", name: "Drain" });
    // Let the request reach the server before stopping.
    await new Promise((r) => setTimeout(r, 20));
    const stopping = t.stop();
    const res = await inflight;
    assert.equal(res.status, "accepted", "the in-flight call completed");
    await stopping;
    await assert.rejects(fetch(`${t.url}/no/such/path`), /fetch failed/);
  });
});

describe("npm start: SIGTERM at any time", () => {
  const root = new URL("../..", import.meta.url).pathname;
  const exitOf = (child: ChildProcess) => new Promise<number | null>((r) => child.once("exit", (code, signal) => r(code ?? (signal as never))));
  const start = (dataDir: string, port: number) =>
    spawn(process.execPath, ["scripts/start.mjs"], {
      cwd: root,
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: dataDir, DATABASE_URL: "", REDIS_URL: "", LOG_LEVEL: "warn", OTEL_SDK_DISABLED: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });

  it("stops cleanly (exit 0) when signalled while still starting; the data dir then opens and serves REST", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "acme-sigterm-"));
    try {
      const port = await freePort();
      const first = start(dataDir, port);
      let out = "";
      first.stdout!.on("data", (c) => (out += c));
      first.stderr!.on("data", (c) => (out += c));
      // Signalled early: PGlite is opening or migrating, nothing listens yet.
      await new Promise((r) => setTimeout(r, 1500));
      first.kill("SIGTERM");
      assert.equal(await exitOf(first), 0, out);
      assert.match(out, /SIGTERM: (finishing in-flight requests|stopped before starting)/);
      assert.ok(!readdirSync(dataDir).some((f) => f.includes(".seeding-")), "no half-copied data dir left");

      // The same data dir starts and answers (nothing half-written), and SIGTERM right after the first answer also exits 0.
      const second = start(dataDir, port);
      const exited = exitOf(second);
      for (let i = 0; ; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
        if (res) {
          assert.equal(res.status, 200);
          break;
        }
        assert.ok(i < 600, "the second start did not answer in 60 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      // What npm start runs is a bundle (scripts/start.mjs): the REST edge, the files it reads, the services.
      const base = `http://127.0.0.1:${port}`;
      assert.equal(((await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string }).openapi.startsWith("3"), true);
      const reg = await fetch(`${base}/v1/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "start@example.com", password: "correct horse battery", name: "Start" }),
      });
      assert.equal(reg.status, 200, await reg.clone().text());
      const login = await fetch(`${base}/v1/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "start@example.com", password: "correct horse battery" }),
      });
      const { tokens } = (await login.json()) as { tokens: { accessToken: string } };
      const me = await fetch(`${base}/v1/users/me`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
      assert.equal(((await me.json()) as { user: { email: string } }).user.email, "start@example.com");
      second.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
