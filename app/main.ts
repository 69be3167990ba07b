// Entry point.
//   npm start                         all services + embedded edge on one port (PORT, default 8080)
//   node --import tsx --import ./platform/telemetry/register.ts app/main.ts auth|user|order|notification|catalogue
//                                     one service (compose, behind Envoy); the preload starts OpenTelemetry
import { loadConfig, ConfigError, } from "../platform/config.js";
import type { ServiceName } from "./services.js";
import { shutdownTelemetry } from "../platform/telemetry/sdk.js";
import { startSystem } from "./system.js";

const NAMES: ServiceName[] = ["auth", "user", "order", "notification", "catalogue"];

async function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => !NAMES.includes(a as ServiceName));
  if (unknown.length) {
    console.error(`unknown service "${unknown[0]}"; expected one of: ${NAMES.join(", ")} (none = all, with the edge)`);
    process.exit(2);
  }
  const config = loadConfig();
  const services = args.length ? (args as ServiceName[]) : NAMES;

  // Signals are handled from the start: a SIGTERM while the system is still
  // starting (PGlite opening, migrations) waits for the start, then stops it
  // cleanly, rather than killing the process mid-write.
  const starting = startSystem({ config, services, edge: args.length === 0 });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: finishing in-flight requests`);
    starting
      .then((system) => system.stop())
      .then(() => shutdownTelemetry()) // export the spans still buffered
      .then(
        () => process.exit(0),
        (err) => {
          console.error("shutdown failed:", err);
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // scripts/start.mjs's "not started yet" listener stands down from here on.
  (globalThis as Record<symbol, unknown>)[Symbol.for("acme.signals.taken")] = true;

  const system = await starting;
  if (stopping) return;
  const base = system.url;
  console.log(`\nacme ${args.length ? services.join(", ") : "all services + edge"} listening on ${base}`);
  if (system.metricsUrl) console.log(`  metrics (operators only, not on the public port): ${system.metricsUrl}/metrics`);
  if (args.length === 0) {
    console.log(`  REST:  curl -s ${base}/v1/auth/register -H 'content-type: application/json' -d '{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}'`);
  }
  if (config.tls) console.log(`  TLS:   certificate ${config.tls.certFile}; clients trust the CA that signed it (curl --cacert, buf curl --cacert, grpcurl -cacert)`);
  console.log(`  gRPC:  npx buf curl --protocol grpc${config.tls ? "" : " --http2-prior-knowledge"} ${base} --list-services\n`);
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
