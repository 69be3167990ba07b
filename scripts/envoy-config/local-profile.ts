// The local profile: envoy/settings.yaml with loopback addresses and the
// stack's ports in place of compose's service names, the descriptor set
// and OpenAPI document read from this checkout (the /docs/ files from the
// installed swagger-ui-dist), and the certificates the
// stack made in its data dir. `npm run stack` renders it with
// the same generator as envoy/envoy.yaml; nothing else differs.
import { fileURLToPath } from "node:url";
import { swaggerUiDir } from "../../edge/docs.js";
import type { StackPorts } from "../stack/ports.js";
import { loadSettings, type EdgeSettings, type HostPort } from "./settings.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const LOOPBACK = "127.0.0.1";

/** Where `npm run stack` keeps the certificates by default (STACK_DIR/tls, scripts/stack/certs.ts). */
export const DEFAULT_TLS_DIR = `${root}.data/stack/tls`;

/**
 * Each upstream of the settings (one per service package, envoy/settings.yaml) at the
 * stack's port of the service of that name (scripts/stack/ports.ts).
 */
function localUpstreams(ports: StackPorts, base: EdgeSettings): Record<string, HostPort> {
  return Object.fromEntries(Object.keys(base.upstreams).map((name) => {
    const port = (ports as unknown as Record<string, number | undefined>)[name];
    if (typeof port !== "number") throw new Error(`local profile: no stack port for upstream "${name}" (envoy/settings.yaml): add it to scripts/stack/ports.ts`);
    return [name, { host: LOOPBACK, port }];
  }));
}

export function localSettings(ports: StackPorts, base: EdgeSettings = loadSettings(), tlsDir = DEFAULT_TLS_DIR): EdgeSettings {
  const at = (port: number) => ({ host: LOOPBACK, port });
  return {
    ...base,
    listen_address: LOOPBACK,
    listener_port: ports.envoy,
    tls: { listener_port: ports.envoyTls, certificate_chain: `${tlsDir}/server.crt`, private_key: `${tlsDir}/server.key` },
    admin_address: LOOPBACK,
    admin_port: ports.envoyAdmin,
    descriptor_set: `${root}gen/api.binpb`,
    openapi_document: `${root}gen/openapi.json`,
    swagger_ui_dist: swaggerUiDir(),
    upstreams: localUpstreams(ports, base),
    ratelimit: { ...base.ratelimit, ...at(ports.ratelimitGrpc) },
    tracing: { ...base.tracing, ...at(ports.otlpGrpc) },
  };
}
