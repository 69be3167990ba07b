// The local profile: envoy/settings.yaml with loopback addresses and the
// stack's ports in place of compose's service names, and the descriptor set
// and OpenAPI document read from this checkout. `npm run stack` renders it with
// the same generator as envoy/envoy.yaml; nothing else differs.
import { fileURLToPath } from "node:url";
import type { StackPorts } from "../stack/ports.js";
import { loadSettings, type EdgeSettings } from "./settings.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const LOOPBACK = "127.0.0.1";

export function localSettings(ports: StackPorts, base: EdgeSettings = loadSettings()): EdgeSettings {
  const at = (port: number) => ({ host: LOOPBACK, port });
  return {
    ...base,
    listen_address: LOOPBACK,
    listener_port: ports.envoy,
    admin_address: LOOPBACK,
    admin_port: ports.envoyAdmin,
    descriptor_set: `${root}gen/api.binpb`,
    openapi_document: `${root}gen/openapi.json`,
    upstreams: { auth: at(ports.auth), user: at(ports.user), order: at(ports.order) },
    ratelimit: { ...base.ratelimit, ...at(ports.ratelimitGrpc) },
    tracing: { ...base.tracing, ...at(ports.otlpGrpc) },
  };
}
