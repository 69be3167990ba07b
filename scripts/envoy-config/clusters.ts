// The upstream clusters: one per service (gRPC over h2c, health-checked), the
// JWKS fetch, the ratelimit service, the trace collector, and the empty one.
import { note } from "./commented-yaml.js";
import type { EdgeContract } from "./contract.js";
import { NO_UPSTREAM, T } from "./envoy-values.js";
import type { EdgeSettings, HostPort } from "./settings.js";

function cluster(name: string, hp: HostPort, opts: { http2: boolean; healthService?: string }) {
  const c: Record<string, unknown> = {
    name,
    type: "STRICT_DNS",
    connect_timeout: "1s",
    dns_lookup_family: "V4_ONLY",
    lb_policy: "ROUND_ROBIN",
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: hp.host, port_value: hp.port } } } }] }],
    },
  };
  if (opts.http2) {
    c.typed_extension_protocol_options = {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": T("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  if (opts.healthService !== undefined) {
    c.health_checks = [{
      timeout: "1s",
      interval: "5s",
      no_traffic_interval: "5s",
      unhealthy_threshold: 2,
      healthy_threshold: 1,
      grpc_health_check: { service_name: opts.healthService },
    }];
  }
  return c;
}

export function clusters(s: EdgeSettings, { routable }: EdgeContract) {
  return [
    ...Object.entries(s.upstreams).sort(([a], [b]) => a.localeCompare(b)).map(([name, hp]) => {
      const health = routable.find((x) => x.cluster === name)?.name;
      return note(`gRPC (h2c) to the ${name} service; Envoy health-checks ${health ?? "its server (\"\")"}.`,
        cluster(name, hp, { http2: true, healthService: health ?? "" }));
    }),
    note("The same auth port over HTTP/1.1, for the JWKS fetch only.",
      cluster(`${s.jwt.jwks_upstream}_jwks`, s.upstreams[s.jwt.jwks_upstream], { http2: false })),
    note("envoyproxy/ratelimit gRPC API.", cluster("ratelimit", s.ratelimit, { http2: true })),
    note("Jaeger's OTLP gRPC receiver.", cluster("otlp", s.tracing, { http2: true })),
    note("No endpoints: see the rest-before-transcoding route.", {
      name: NO_UPSTREAM, type: "STATIC", connect_timeout: "1s", load_assignment: { cluster_name: NO_UPSTREAM },
    }),
  ];
}
