// docker-compose.yml, Dockerfile and envoy/ratelimit/config.yaml, checked statically
// against envoy/envoy.yaml and envoy/settings.yaml (Docker cannot run here), plus the
// compose healthcheck and secrets scripts run for real; Mailpit and the notification
// service that sends to it against scripts/tools/versions.json. Each check fails on a broken copy.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { checkCompose, checkRatelimitConfig } from "./compose-check.js";
import { ROOT } from "./envoy-protos.js";
import { copyOf, loadInputs, readRepo, type Inputs, type Json } from "./inputs.js";
import { limitFor } from "./simulate.js";
import { DEFAULT_PORTS } from "../../scripts/stack/ports.js";

const run = promisify(execFile);
const exitCode = (cmd: string[], env: Record<string, string> = {}, cwd?: string) =>
  run(cmd[0], cmd.slice(1), { env: { ...process.env, ...env }, timeout: 10_000, cwd }).then(() => 0, (e) => e.code as number);

/**
 * Mailpit (the pinned image, loopback ports, its messages on a volume) and the
 * notification service's way to it (SMTP_URL, start order). compose-check.ts
 * covers the services behind Envoy; this, what only mail needs.
 */
function checkMail(i: Inputs): string[] {
  const problems: string[] = [];
  const need = (cond: boolean, msg: string) => { if (!cond) problems.push(msg); };
  const services: Record<string, Json> = i.compose.services ?? {};
  const mp = services.mailpit;
  const n = services.notification;
  if (!mp || !n) return [`compose has no service "${mp ? "notification" : "mailpit"}"`];
  need(mp.image === i.tools.mailpit.image, `mailpit: image ${mp.image} must be ${i.tools.mailpit.image} (scripts/tools/versions.json)`);
  const ports: string[] = (mp.ports ?? []).map(String);
  for (const p of ports) need(p.startsWith("127.0.0.1:"), `mailpit: ${p} must be published on 127.0.0.1 only (its API has no authentication)`);
  need(ports.includes("127.0.0.1:8025:8025"), "mailpit: the web UI and API (8025) must be published on 127.0.0.1:8025");
  need(!!mp.healthcheck, "mailpit: no healthcheck");
  const env = mp.environment ?? {};
  const smtpPort = Number(String(env.MP_SMTP_BIND_ADDR ?? ":1025").split(":").at(-1));
  const volume = (mp.volumes ?? []).map((v: string) => v.split(":")).find(([source, target]: string[]) => source in (i.compose.volumes ?? {}) && String(env.MP_DATABASE).startsWith(`${target}/`));
  need(!!volume, `mailpit: MP_DATABASE ${env.MP_DATABASE} is not on a named volume (the messages would go with the container)`);
  const smtp = new URL(n.environment?.SMTP_URL ?? "x:");
  need(smtp.protocol === "smtp:" && smtp.hostname === "mailpit" && Number(smtp.port) === smtpPort,
    `notification: SMTP_URL ${n.environment?.SMTP_URL} must be smtp://mailpit:${smtpPort}`);
  need(n.depends_on?.mailpit?.condition === "service_healthy", "notification must wait for mailpit (service_healthy)");
  need(services.envoy?.depends_on?.notification?.condition === "service_healthy", "envoy must wait for notification (service_healthy)");
  return problems;
}

describe("deployment: ratelimit config, docker compose, Dockerfile", () => {
  let base: Inputs;
  before(() => { base = loadInputs(); });
  const has = (problems: string[], re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join("\n") || "(none)"}`);
  const broken = (mutate: (i: Inputs) => void) => { const i = copyOf(base); mutate(i); return i; };

  it("envoy/ratelimit/config.yaml is valid envoyproxy/ratelimit config with the agreed limits", () => {
    assert.deepEqual(checkRatelimitConfig(base), []);
    const limit = (...d: [string, string][]) => limitFor(base.ratelimit, d).node?.rate_limit;
    assert.deepEqual(limit(["remote_address", "198.51.100.1"]), { unit: "second", requests_per_unit: 20 });
    assert.deepEqual(limit(["user_per_second", "u1"]), { unit: "second", requests_per_unit: 3 });
    assert.deepEqual(limit(["user_per_minute", "u1"]), { unit: "minute", requests_per_unit: 100 });
    assert.deepEqual(limit(["rate_class", "auth"], ["remote_address", "198.51.100.1"]), { unit: "minute", requests_per_unit: 20 });
    assert.equal(limit(["rate_class", "other"], ["remote_address", "198.51.100.1"]), undefined);
  });

  it("docker-compose.yml matches the clusters, mounts, ports and settings", () => {
    assert.deepEqual(checkCompose(base), []);
  });

  it("Mailpit is the pinned image on loopback, and the notification service sends to it", () => {
    assert.deepEqual(checkMail(base), []);
  });

  it("the notification service is deployed as the services behind Envoy are (compose-check, with its upstream)", () => {
    // Its REST routes go through Envoy: the checks of the other services, as if envoy/settings.yaml named it already.
    const i = copyOf(base);
    i.settings.upstreams.notification ??= { host: "notification", port: DEFAULT_PORTS.notification };
    assert.deepEqual(checkCompose(i), []);
  });

  it("compose strings have no stray $ (compose would interpolate it)", () => {
    for (const [name, s] of Object.entries<Json>(base.compose.services)) {
      for (const text of [s.command, s.healthcheck?.test].flat().filter((x) => typeof x === "string")) {
        assert.doesNotMatch(text.replaceAll("$$", ""), /\$/, `${name}: ${text.slice(0, 60)}`);
      }
    }
  });

  it("Dockerfile: node:20-bookworm-slim, npm ci, the whole tree, no secrets in the context", () => {
    const dockerfile = readRepo("Dockerfile");
    assert.match(dockerfile, /^FROM node:20-bookworm-slim$/m);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^COPY \. \.$/m);
    const ignored = readRepo(".dockerignore").split("\n").map((l) => l.trim());
    for (const p of [".env", "node_modules", ".git", ".data"]) assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
    for (const p of ["gen", "services", "platform", "proto"]) assert.ok(!ignored.includes(p), `.dockerignore drops ${p}`);
  });

  it("the services import only runtime dependencies (the image installs --omit=dev)", () => {
    const pkg = JSON.parse(readRepo("package.json"));
    const files = (dir: string): string[] => readdirSync(join(ROOT, dir)).flatMap((n) => {
      const p = join(dir, n);
      return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
    });
    const seen = new Set<string>();
    for (const file of ["services", "platform", "edge", "gen"].flatMap(files)) {
      const src = readRepo(file);
      const specs = [...src.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm), ...src.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)]
        .map((m) => m[1]).filter((s) => !s.startsWith("."));
      for (const spec of specs) {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
        seen.add(name);
        if (name.startsWith("node:") || builtinModules.includes(name)) continue;
        assert.ok(pkg.dependencies[name], `${file} imports ${name}, which is not in "dependencies"`);
      }
    }
    assert.ok(seen.has("@bufbuild/protobuf") && seen.has("node:fs"), "the import scan found nothing");
  });

  it(".env.example holds no values", () => {
    for (const line of readRepo(".env.example").split("\n")) {
      if (line.trim() && !line.trim().startsWith("#")) assert.match(line, /^[A-Z_]+=$/, line);
    }
  });

  describe("compose scripts, run for real", function () {
    this.timeout(30_000);

    it("the services' healthcheck speaks gRPC health to a real gRPC server", async () => {
      const cmd: string[] = base.compose.services.auth.healthcheck.test.slice(1);
      assert.equal(cmd[0], "node");
      const server = new grpc.Server();
      const health = new HealthImplementation({ "": "SERVING" });
      health.addToServer(server);
      const port = await new Promise<number>((ok, ko) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? ko(e) : ok(p))));
      try {
        assert.equal(await exitCode(cmd, { PORT: String(port) }), 0, "SERVING");
        health.setStatus("", "NOT_SERVING");
        assert.equal(await exitCode(cmd, { PORT: String(port) }), 1, "NOT_SERVING");
      } finally {
        server.forceShutdown();
      }
      assert.equal(await exitCode(cmd, { PORT: String(port) }), 1, "nothing listening");
    });

    it("secrets-init writes each service's env file once, and node --env-file reads it", async () => {
      const dir = mkdtempSync(join(tmpdir(), "acme-secrets-"));
      try {
        const script: string = base.compose.services["secrets-init"].command[2];
        const cmd = ["node", "-e", script.replaceAll("/run/acme-secrets", dir)];
        assert.equal(await exitCode(cmd), 0);
        const first = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
        assert.equal(await exitCode(cmd), 0);
        for (const [f, text] of Object.entries(first)) assert.equal(readFileSync(join(dir, f), "utf8"), text, `${f} was rewritten`);
        assert.equal(statSync(join(dir, "postgres_password")).mode & 0o777, 0o444);
        const pgFile = base.compose.services.postgres.environment.POSTGRES_PASSWORD_FILE.replace("/run/acme-secrets", dir);
        const pg = readFileSync(pgFile, "utf8");
        // Every service that reads an env file: each of app/services.ts.
        const names = Object.keys(base.compose.services).filter((n) => base.compose.services[n].command?.some?.((a: string) => a.startsWith("--env-file=")));
        assert.deepEqual(names, ["auth", "user", "order", "notification", "catalogue"]);
        const CLIENTS = names.map((n) => n.toUpperCase());
        let amqp: string | undefined;
        for (const name of names) {
          const envFile = base.compose.services[name].command.find((a: string) => a.startsWith("--env-file=")).slice(11).replace("/run/acme-secrets", dir);
          const { stdout } = await run("node", [`--env-file=${envFile}`, "-e", "console.log(JSON.stringify(process.env))"], { env: {} });
          const env = JSON.parse(stdout);
          assert.equal(env.PGPASSWORD, pg, `${name}: PGPASSWORD`);
          assert.ok(env[`${name.toUpperCase()}_CLIENT_SECRET`]?.length >= 16, `${name}: its client secret`);
          const others = CLIENTS.filter((n) => n !== name.toUpperCase() && env[`${n}_CLIENT_SECRET`]);
          assert.deepEqual(others, name === "auth" ? CLIENTS.slice(1) : [], `${name}: other clients' secrets`);
          // One broker user for all (rabbitmq.conf), reached on the rabbitmq service.
          assert.match(env.AMQP_URL ?? "", /^amqp:\/\/acme:[^@]+@rabbitmq:5672$/, `${name}: AMQP_URL`);
          assert.equal(env.AMQP_URL, (amqp ??= env.AMQP_URL), `${name}: the same AMQP_URL`);
        }
        assert.equal(readFileSync(join(dir, "notification.env"), "utf8").includes("PAGE_TOKEN_SECRET="), true, "notification: PAGE_TOKEN_SECRET (its lists' page tokens)");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("tls-init, run for real", function () {
    this.timeout(30_000);

    it("makes the local CA and Envoy's certificate once, where Envoy reads them, and keeps them", async () => {
      const dir = mkdtempSync(join(tmpdir(), "acme-tls-init-"));
      try {
        const job = base.compose.services["tls-init"];
        const target: string = job.volumes[0].split(":")[1];
        const cmd: string[] = job.command.map((a: string) => a.replace(target, dir));
        assert.equal(await exitCode(cmd, {}, ROOT), 0);
        const first = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
        assert.deepEqual(Object.keys(first).sort(), ["ca.crt", "ca.key", "server.crt", "server.key"]);
        assert.equal(await exitCode(cmd, {}, ROOT), 0);
        for (const [f, text] of Object.entries(first)) assert.equal(readFileSync(join(dir, f), "utf8"), text, `${f} was rewritten`);
        // Envoy's user (another uid) reads the key; the CA's key stays private.
        assert.equal(statSync(join(dir, "server.key")).mode & 0o777, 0o444);
        assert.equal(statSync(join(dir, "ca.key")).mode & 0o777, 0o600);
        // Envoy mounts the same volume where the settings say the files are.
        const mount = base.compose.services.envoy.volumes.find((v: string) => v.startsWith(`${job.volumes[0].split(":")[0]}:`)).split(":")[1];
        for (const [key, file] of [["certificate_chain", "server.crt"], ["private_key", "server.key"]] as const) {
          assert.equal(base.settings.tls[key], `${mount}/${file}`);
        }
        const cert = new X509Certificate(first["server.crt"]);
        assert.ok(cert.verify(new X509Certificate(first["ca.crt"]).publicKey));
        assert.match(String(cert.subjectAltName), /DNS:localhost, IP Address:127\.0\.0\.1/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("catches a broken copy", () => {
    const service = (i: Inputs, n: string) => i.compose.services[n];

    it("a service port that differs from its Envoy cluster", () => {
      has(checkCompose(broken((x) => { service(x, "order").environment.PORT = "50099"; })),
        /cluster order: order:50053, but compose service order listens on 50099/);
    });
    it("a cluster host that is not a compose service", () => {
      has(checkCompose(broken((x) => { x.compose.services.ratelimiter = x.compose.services.ratelimit; delete x.compose.services.ratelimit; })),
        /cluster ratelimit: host ratelimit is not a compose service/);
    });
    it("the descriptor set mounted where the transcoder does not look", () => {
      has(checkCompose(broken((x) => { service(x, "envoy").volumes[1] = "./gen/api.binpb:/etc/envoy/descriptors.pb:ro"; })),
        /gen\/api\.binpb must be mounted at \/etc\/envoy\/api\.binpb/);
    });
    it("the OpenAPI document not mounted (Envoy would refuse to start: direct_response body filename)", () => {
      const i = broken((x) => { service(x, "envoy").volumes = service(x, "envoy").volumes.filter((v: string) => !v.includes("openapi")); });
      has(checkCompose(i), /gen\/openapi\.json must be mounted at \/etc\/envoy\/openapi\.json/);
      has(checkCompose(i), /envoy reads \/etc\/envoy\/openapi\.json, which is not mounted/);
    });
    it("the OpenAPI document mounted where the direct response does not read it", () => {
      has(checkCompose(broken((x) => { x.settings.openapi_document = "/etc/envoy/openapi/openapi.json"; })), /gen\/openapi\.json must be mounted at \/etc\/envoy\/openapi\/openapi\.json/);
    });
    it("a file Envoy reads mounted from a path that is not in the repository", () => {
      const i = broken((x) => { const v: string[] = service(x, "envoy").volumes; v[v.findIndex((m) => m.includes("openapi"))] = "./openapi.json:/etc/envoy/openapi.json:ro"; });
      has(checkCompose(i), /envoy: openapi\.json, mounted at \/etc\/envoy\/openapi\.json, is not a file in the repository/);
    });
    it("Envoy's config mounted where --config-path does not point", () => {
      has(checkCompose(broken((x) => { service(x, "envoy").command[2] = "/etc/envoy/edge.yaml"; })), /envoy\.yaml must be mounted at \/etc\/envoy\/edge\.yaml/);
    });
    it("the ratelimit config directory mounted elsewhere", () => {
      has(checkCompose(broken((x) => { service(x, "ratelimit").environment.RUNTIME_SUBDIRECTORY = "rl"; })), /envoy\/ratelimit must be mounted/);
    });
    it("the admin port published on every interface", () => {
      has(checkCompose(broken((x) => { const p: string[] = service(x, "envoy").ports; p[p.indexOf("127.0.0.1:9901:9901")] = "9901:9901"; })), /admin 9901 must be published on 127\.0\.0\.1 only/);
    });
    it("the HTTPS listener not published", () => {
      has(checkCompose(broken((x) => { service(x, "envoy").ports = service(x, "envoy").ports.filter((p: string) => p !== "8443:8443"); })),
        /listener edge_tls port 8443 is not published/);
    });
    it("the certificate volume not mounted, or Envoy not waiting for the job that writes it", () => {
      has(checkCompose(broken((x) => { service(x, "envoy").volumes = service(x, "envoy").volumes.filter((v: string) => !v.startsWith("acme-tls:")); })),
        /envoy reads \/etc\/envoy\/tls\/server\.crt, which is not mounted/);
      has(checkCompose(broken((x) => { delete service(x, "envoy").depends_on["tls-init"]; })),
        /envoy reads \/etc\/envoy\/tls\/server\.key from volume acme-tls: it must be written by a one-shot job envoy waits for/);
      has(checkCompose(broken((x) => { const v: string[] = service(x, "envoy").volumes; v[v.indexOf("acme-tls:/etc/envoy/tls:ro")] = "acme-tls:/etc/envoy/tls"; })),
        /volume acme-tls must be mounted read-only/);
    });
    it("waiting for a healthy service that has no healthcheck", () => {
      has(checkCompose(broken((x) => { delete service(x, "ratelimit").healthcheck; })), /waits for ratelimit to be healthy, but ratelimit has no healthcheck/);
    });
    it("a Mailpit image other than the version the tests run, or its UI open to every interface", () => {
      has(checkMail(broken((x) => { service(x, "mailpit").image = "axllent/mailpit:latest"; })), /mailpit: image axllent\/mailpit:latest must be axllent\/mailpit:v1\.33\.1/);
      has(checkMail(broken((x) => { service(x, "mailpit").ports = ["8025:8025"]; })), /mailpit: 8025:8025 must be published on 127\.0\.0\.1 only/);
    });
    it("mail sent elsewhere than Mailpit's SMTP port, or before Mailpit is up", () => {
      has(checkMail(broken((x) => { service(x, "notification").environment.SMTP_URL = "smtp://mailpit:25"; })), /notification: SMTP_URL smtp:\/\/mailpit:25 must be smtp:\/\/mailpit:1025/);
      has(checkMail(broken((x) => { delete service(x, "notification").depends_on.mailpit; })), /notification must wait for mailpit/);
    });
    it("Mailpit's database in the container (lost with it)", () => {
      has(checkMail(broken((x) => { service(x, "mailpit").environment.MP_DATABASE = "/tmp/mailpit.db"; })), /mailpit: MP_DATABASE \/tmp\/mailpit\.db is not on a named volume/);
    });
    it("an Envoy, ratelimit or Jaeger image other than the version the tests run", () => {
      has(checkCompose(broken((x) => { service(x, "envoy").image = "envoyproxy/envoy:v1.33.2"; })), /envoy: image envoyproxy\/envoy:v1\.33\.2 must be envoyproxy\/envoy:v1\.40\.0/);
      has(checkCompose(broken((x) => { x.tools.jaeger.image = "jaegertracing/jaeger:9.9.9"; })), /jaeger: image jaegertracing\/jaeger:2\.13\.0 must be jaegertracing\/jaeger:9\.9\.9/);
    });
    it("an unpinned image", () => {
      has(checkCompose(broken((x) => { service(x, "redis").image = "redis:latest"; })), /redis: image redis:latest is not pinned/);
    });
    it("a service that disagrees with the JWT issuer", () => {
      has(checkCompose(broken((x) => { service(x, "user").environment.JWT_ISSUER = "acme"; })), /user: JWT_ISSUER\/JWT_AUDIENCE differ/);
    });
    it("a ratelimit domain that is not Envoy's", () => {
      has(checkRatelimitConfig(broken((x) => { x.ratelimit.domain = "edge"; })), /ratelimit domain "edge" != Envoy's "acme"/);
    });
    it("a ratelimit unit the service does not know", () => {
      has(checkRatelimitConfig(broken((x) => { x.ratelimit.descriptors[0].rate_limit.unit = "fortnight"; })), /unit fortnight/);
    });
    it("another file in envoy/ratelimit (the service would load it)", () => {
      has(checkRatelimitConfig(broken((x) => { x.ratelimitDir.push("README.md"); })), /envoy\/ratelimit holds README\.md/);
    });
  });
});
