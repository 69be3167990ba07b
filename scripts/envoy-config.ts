// Writes envoy/envoy.yaml from the contract and envoy/settings.yaml:
//   node --import tsx scripts/envoy-config.ts           write envoy/envoy.yaml
//   node --import tsx scripts/envoy-config.ts --check   exit 1 if envoy/envoy.yaml is stale
//   node --import tsx scripts/envoy-config.ts --stdout  print instead of writing
//   node --import tsx scripts/envoy-config.ts --local   print the local profile (`npm run stack`)
// Routes, JWT requirements and rate-limit classes come from platform/policy.ts (the
// (acme.edge.v1.policy) options); hosts, ports and limits from envoy/settings.yaml.
// CORS header lists and the OpenAPI path are the embedded edge's (edge/cors.ts,
// edge/openapi.ts), so both edges answer alike.
// Two listeners serve the same API: plain HTTP (browser navigations redirected to https)
// and HTTPS (TLS 1.2+, HSTS on every answer; docs/tls.md); the second connection manager
// refers to the first's routes and filters by YAML anchors.
// The output is deterministic: same inputs, same bytes.
//
// The parts, in scripts/envoy-config/: settings.ts (envoy/settings.yaml),
// contract.ts (services and RPCs from platform/policy.ts, and the refusals),
// routes.ts, http-filters.ts, connection-manager.ts, clusters.ts; commented-yaml.ts
// prints it all as YAML with the comments.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Document } from "yaml";
import { type MethodPolicy } from "../platform/policy.js";
import { policies as productPolicies } from "../app/contract.js";
import { clusters } from "./envoy-config/clusters.js";
import { note, shareIdentical, shareIdenticalItems, toNode } from "./envoy-config/commented-yaml.js";
import { connectionManager } from "./envoy-config/connection-manager.js";
import { edgeContract } from "./envoy-config/contract.js";
import { T } from "./envoy-config/envoy-values.js";
import { DEFAULT_PORTS } from "./stack/ports.js";
import { DEFAULT_TLS_DIR, localSettings } from "./envoy-config/local-profile.js";
import { ENVOY_YAML, loadSettings, OPENAPI_JSON, type EdgeSettings } from "./envoy-config/settings.js";

export { clusterOf } from "./envoy-config/contract.js";
export { localSettings } from "./envoy-config/local-profile.js";
export { ENVOY_YAML, loadSettings, OPENAPI_JSON, SETTINGS_YAML, type EdgeSettings, type HostPort } from "./envoy-config/settings.js";

/** TLS termination on the HTTPS listener: TLS 1.2 and 1.3 only, h2 and http/1.1 offered by ALPN. */
function tlsTransportSocket(s: EdgeSettings) {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": T("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
      common_tls_context: {
        tls_params: note("TLS 1.0 and 1.1 are refused at the handshake.", { tls_minimum_protocol_version: "TLSv1_2" }),
        alpn_protocols: ["h2", "http/1.1"],
        tls_certificates: [note("Made at the first start (scripts/stack/certs.ts), never committed.", {
          certificate_chain: { filename: s.tls.certificate_chain },
          private_key: { filename: s.tls.private_key },
        })],
      },
    },
  };
}

export function renderEnvoyConfig(
  s: EdgeSettings = loadSettings(),
  policies: readonly MethodPolicy[] = [...productPolicies.all()],
): string {
  const contract = edgeContract(s, policies);
  const openApiBytes = statSync(OPENAPI_JSON).size;
  if (openApiBytes > s.max_direct_response_body_bytes) {
    throw new Error(`gen/openapi.json is ${openApiBytes} bytes, over max_direct_response_body_bytes ${s.max_direct_response_body_bytes} (envoy/settings.yaml): Envoy would refuse the config`);
  }

  // The two listeners' connection managers differ only in the first filters (HSTS; the redirect)
  // and the stat prefix: the rest is printed once and aliased (YAML anchors) in the second.
  const plainHcm = connectionManager(s, contract, "plain");
  const tlsHcm = connectionManager(s, contract, "tls");
  shareIdentical(plainHcm, tlsHcm, "");
  shareIdenticalItems(plainHcm.http_filters, tlsHcm.http_filters, "filter_");

  const bootstrap = {
    node: { id: "acme-edge", cluster: "acme-edge" },
    admin: note(`Admin: /stats/prometheus, /ready, /config_dump. Never published beyond the host.`, {
      address: { socket_address: { address: s.admin_address, port_value: s.admin_port } },
    }),
    layered_runtime: { layers: [{ name: "admin", admin_layer: {} }] },
    overload_manager: {
      resource_monitors: [{
        name: "envoy.resource_monitors.global_downstream_max_connections",
        typed_config: {
          "@type": T("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"),
          max_active_downstream_connections: s.connection_limits.max_connections,
        },
      }],
    },
    static_resources: {
      listeners: [
        note("Plain HTTP: the API (REST, gRPC h2c, gRPC-Web, Connect); browser navigations are redirected to https.", {
          name: "edge",
          address: { socket_address: { address: s.listen_address, port_value: s.listener_port } },
          per_connection_buffer_limit_bytes: 32768,
          filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: plainHcm }] }],
        }),
        note("HTTPS: the same API over TLS 1.2+ (ALPN h2, http/1.1), HSTS on every answer (docs/tls.md).", {
          name: "edge_tls",
          address: { socket_address: { address: s.listen_address, port_value: s.tls.listener_port } },
          per_connection_buffer_limit_bytes: 32768,
          filter_chains: [{
            transport_socket_connect_timeout: note("A TLS handshake must finish within the headers timeout.", s.connection_limits.headers_timeout),
            transport_socket: tlsTransportSocket(s),
            filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: tlsHcm }],
          }],
        }),
      ],
      clusters: clusters(s, contract),
    },
  };

  const doc = new Document();
  doc.commentBefore = [
    " GENERATED by scripts/envoy-config.ts from the contract (proto/, via platform/policy.ts)",
    " and envoy/settings.yaml. Do not edit: change those and run",
    "   node --import tsx scripts/envoy-config.ts",
    " Proven by test/envoy (strict parse against Envoy's API protos + cross-checks).",
  ].join("\n");
  doc.contents = toNode(bootstrap) as typeof doc.contents;
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

function main(): void {
  if (process.argv.includes("--local")) {
    const tlsDir = process.env.STACK_DIR ? `${resolve(process.env.STACK_DIR)}/tls` : DEFAULT_TLS_DIR;
    process.stdout.write(renderEnvoyConfig(localSettings(DEFAULT_PORTS, undefined, tlsDir)));
    return;
  }
  const out = renderEnvoyConfig();
  if (process.argv.includes("--stdout")) {
    process.stdout.write(out);
  } else if (process.argv.includes("--check")) {
    const current = readFileSync(ENVOY_YAML, "utf8");
    if (current !== out) {
      console.error("envoy/envoy.yaml is stale: run node --import tsx scripts/envoy-config.ts");
      process.exit(1);
    }
  } else {
    writeFileSync(ENVOY_YAML, out);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
