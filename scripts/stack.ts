// `npm run stack`: the real topology on this machine, without Docker (see
// scripts/stack/index.ts). Needs `npm run tools` (Envoy, ratelimit, Jaeger, Mailpit) and
// Debian's postgresql, redis-server and rabbitmq-server. Ctrl-C or SIGTERM stops everything it started.
//   STACK_DIR   where data, logs, the local CA and certificate (tls/) and the rendered envoy.yaml go (default .data/stack)
//   LOG_LEVEL   the services' log level (default info)
//   STACK_PORTS=free   take free ports instead of the defaults (tests, a second stack)
import { resolve } from "node:path";
import { DEFAULT_PORTS, freePorts, SERVICES, startStack, type Stack } from "./stack/index.js";
import { toolPath, type ToolName } from "./tools/index.js";

const dir = resolve(process.env.STACK_DIR || ".data/stack");

for (const tool of ["envoy", "ratelimit", "jaeger", "mailpit"] as ToolName[]) {
  try {
    toolPath(tool);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}

let stack: Stack | undefined;
let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the stack`);
  await stack?.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

console.log(`acme stack: starting (data and logs in ${dir})`);
const started = Date.now();
const ports = process.env.STACK_PORTS === "free" ? await freePorts() : DEFAULT_PORTS;
try {
  stack = await startStack({
    dir,
    ports,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "info" },
    progress: (l) => console.log(l),
    onExit: (name, code) => {
      if (!stopping) console.error(`acme stack: ${name} exited (${code}); see ${dir}/logs/${name}.log`);
    },
  });
} catch (err) {
  console.error(`\nacme stack: failed to start: ${(err as Error).message}`);
  process.exit(1);
}
if (stopping) await new Promise(() => {});
const p = ports;
const serviceUrl = stack.serviceUrl;
console.log(`
acme stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s
  REST + gRPC via Envoy   ${stack.edgeUrl}
    curl -s ${stack.edgeUrl}/v1/auth/register -H 'content-type: application/json' -d '{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}'
    grpcurl -plaintext -protoset gen/api.binpb 127.0.0.1:${p.envoy} list
  HTTPS via Envoy         https://localhost:${p.envoyTls}   (TLS 1.2+, HSTS; browsers on :${p.envoy} are redirected here)
    curl -s --cacert ${stack.caFile} https://localhost:${p.envoyTls}/.well-known/jwks.json
    grpcurl -cacert ${stack.caFile} -protoset gen/api.binpb localhost:${p.envoyTls} list
  local CA                ${stack.caFile}   (trust it in a browser to open https://localhost:${p.envoyTls})
  Jaeger UI               ${stack.jaegerUrl}
  Envoy admin             ${stack.adminUrl}   (/stats/prometheus, /clusters, /ready)
  services (direct)       ${SERVICES.map((n) => `${n} ${serviceUrl(n)}`).join(", ")}
  Postgres                ${stack.databaseUrl}
  Redis                   ${stack.redisUrl}
  RabbitMQ                ${stack.amqpUrl}   (events from the services' outboxes; management UI http://127.0.0.1:${p.rabbitmqManagement})
  Mailpit inbox           ${stack.mailpitUrl}   (the mail the notification service sent to ${stack.smtpUrl}; API ${stack.mailpitUrl}/api/v1/messages)
  logs                    ${dir}/logs/*.log
  an admin account:       DATABASE_URL=${stack.databaseUrl} DATA_DIR=${dir}/data npm run admin -- create --email you@example.com
Ctrl-C stops everything.`);
