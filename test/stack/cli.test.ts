// `npm run stack` as a user runs it: progress while it starts, the URLs when it
// is ready, a working API behind the printed Envoy URL, and on SIGTERM (or Ctrl-C)
// everything it started is stopped: no process of its data dir is left.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVICES } from "../../scripts/stack/index.js";
import { Mailpit } from "../support/mailpit.js";
import { rest } from "./support.js";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Pids of processes whose command line or environment mentions `needle`. */
function processesOf(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      const env = readFileSync(`/proc/${d}/environ`, "utf8");
      if (cmd.includes(needle) || env.includes(needle)) out.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  describe(`npm run stack (${signal})`, function () {
    this.timeout(120_000);
    const dir = mkdtempSync(join(tmpdir(), "acme-stack-cli-"));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it(`starts with progress, prints the URLs, serves through Envoy, and stops everything on ${signal}`, async () => {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/stack.ts"], {
        cwd: ROOT,
        env: { ...process.env, STACK_DIR: dir, STACK_PORTS: "free", LOG_LEVEL: "warn", BCRYPT_COST: "10" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (out += d));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        const until = Date.now() + 90_000;
        while (!/acme stack ready/.test(out)) {
          if (child.exitCode !== null) assert.fail(`npm run stack exited ${child.exitCode}:\n${out}`);
          if (Date.now() > until) assert.fail(`not ready within 90 s:\n${out}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        // Every service of app/services.ts (auth, user, order, notification) as its own process.
        assert.ok(SERVICES.includes("notification"), `the stack's services: ${SERVICES.join(", ")}`);
        for (const name of ["postgres", "redis", "rabbitmq", "mailpit", "jaeger", "ratelimit", ...SERVICES, "envoy"]) {
          assert.match(out, new RegExp(`starting ${name}`), `progress for ${name}`);
          if (!["postgres", "redis", "rabbitmq"].includes(name)) assert.match(out, new RegExp(`ready +${name}`), `${name} ready`);
        }
        for (const name of SERVICES) assert.match(out, new RegExp(`services \\(direct\\).* ${name} http://127\\.0\\.0\\.1:\\d+`), `${name}'s URL`);
        const edge = /REST \+ gRPC via Envoy\s+(http:\/\/\S+)/.exec(out)?.[1];
        assert.ok(edge, `the Envoy URL is printed:\n${out}`);
        assert.match(out, /Jaeger UI\s+http:\/\/\S+/);
        const inbox = /Mailpit inbox\s+(http:\/\/\S+)\s/.exec(out)?.[1];
        assert.ok(inbox, `the Mailpit inbox is printed:\n${out}`);
        assert.equal((await new Mailpit(inbox).info()).Version, "v1.33.1");
        const reg = await rest(edge, "POST", "/v1/auth/register", { body: { email: "cli@example.com", password: "correct horse battery", name: "Cli" } });
        assert.equal(reg.status, 200, reg.text);
        const login = await rest(edge, "POST", "/v1/auth/login", { body: { email: "cli@example.com", password: "correct horse battery" } });
        assert.equal(login.status, 200, login.text);
        const me = await rest(edge, "GET", "/v1/users/me", { token: login.body.tokens.accessToken });
        assert.equal(me.status, 200, me.text);
        assert.ok(processesOf(dir).length >= 4, "its programs run");
      } finally {
        child.kill(signal);
      }
      assert.equal(await exited, 0, out);
      assert.match(out, new RegExp(`${signal}: stopping the stack`));
      assert.deepEqual(processesOf(dir), [], "nothing it started is left running");
    });
  });
}
