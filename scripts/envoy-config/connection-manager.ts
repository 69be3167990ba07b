// The HTTP connection manager of the edge listener: request ids, path
// normalisation, timeouts, tracing, the access log, local replies, and the
// route table and filter chain it runs.
import { Code } from "@connectrpc/connect";
import { LOCAL_REPLIES } from "../../edge/errors.js";
import { note } from "./commented-yaml.js";
import type { EdgeContract } from "./contract.js";
import { JWT_FILTER, JWT_PAYLOAD, setHeaders, T } from "./envoy-values.js";
import { httpFilters } from "./http-filters.js";
import { routeConfig } from "./routes.js";
import type { EdgeSettings } from "./settings.js";

/** An access-log filter on the local reply's status code (the runtime key may override it). */
const statusIs = (op: "EQ" | "GE", status: number, runtimeKey: string) => ({
  status_code_filter: { comparison: { op, value: { default_value: status, runtime_key: runtimeKey } } },
});

const accessLog = {
  name: "envoy.access_loggers.stdout",
  typed_config: {
    "@type": T("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
    log_format: {
      json_format: {
        time: "%START_TIME%",
        request_id: "%REQ(X-REQUEST-ID)%",
        trace_id: "%TRACE_ID%",
        traceparent: "%REQ(TRACEPARENT)%",
        client_ip: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        method: "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
        path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        grpc_path: "%REQ(:PATH)%",
        protocol: "%PROTOCOL%",
        status: "%RESPONSE_CODE%",
        grpc_status: "%GRPC_STATUS%",
        details: "%RESPONSE_CODE_DETAILS%",
        flags: "%RESPONSE_FLAGS%",
        duration_ms: "%DURATION%",
        bytes_in: "%BYTES_RECEIVED%",
        bytes_out: "%BYTES_SENT%",
        upstream: "%UPSTREAM_CLUSTER%",
        upstream_host: "%UPSTREAM_HOST%",
        user_agent: "%REQ(USER-AGENT)%",
        jwt_sub: `%DYNAMIC_METADATA(${JWT_FILTER}:${JWT_PAYLOAD}:sub)%`,
      },
    },
  },
};

/**
 * REST requests: those that are not gRPC, and those the transcoder turned into gRPC (it sets
 * x-envoy-original-path, which the header strip removes from what clients send). Their local
 * replies get the JSON body; gRPC clients keep Envoy's grpc-status and grpc-message.
 */
const isRest = {
  or_filter: {
    filters: [
      { header_filter: { header: { name: "content-type", string_match: { prefix: "application/grpc" }, invert_match: true, treat_missing_header_as_empty: true } } },
      { header_filter: { header: { name: "x-envoy-original-path", present_match: true } } },
    ],
  },
};

const jsonError = (code: number, message: string) => ({
  json_format: { code, message },
  content_type: "application/json",
});

function localReplyMappers(s: EdgeSettings) {
  const errors = Object.entries(LOCAL_REPLIES).map(([status, kind]) => {
    const headers = Number(status) === 429
      ? note("retry-after = the refusing window's x-ratelimit-reset, set by the ratelimit filter before this\n" +
        "runs. The local backstop's 429 has no x-ratelimit-reset (an empty value adds nothing) and carries\n" +
        "its own retry-after.", setHeaders({ "retry-after": "%RESP(X-RATELIMIT-RESET)%", ...s.response_headers }))
      : setHeaders(s.response_headers);
    return note(`${status}: ${Code[kind.code]}, ${kind.replaceText ? `"${kind.message}"` : "Envoy's own text"}.`, {
      filter: { and_filter: { filters: [statusIs("EQ", Number(status), `edge.local_reply.status_${status}`), isRest] } },
      headers_to_add: headers,
      body_format_override: jsonError(kind.code, kind.replaceText ? kind.message : "%LOCAL_REPLY_BODY%"),
    });
  });
  return [
    ...errors,
    note("Any other error status: UNKNOWN with Envoy's text.", {
      filter: { and_filter: { filters: [statusIs("GE", 400, "edge.local_reply.min_error_status"), isRest] } },
      headers_to_add: setHeaders(s.response_headers),
      body_format_override: jsonError(Code.Unknown, "%LOCAL_REPLY_BODY%"),
    }),
    note("Every other local reply (direct responses, CORS preflights, gRPC refusals): headers only.", {
      filter: statusIs("GE", 100, "edge.local_reply.min_status"),
      headers_to_add: setHeaders(s.response_headers),
    }),
  ];
}

export function connectionManager(s: EdgeSettings, contract: EdgeContract) {
  return {
    "@type": T("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
    stat_prefix: "edge",
    codec_type: "AUTO",
    use_remote_address: note("Clients connect directly: the client IP is the peer address, not X-Forwarded-For.", true),
    xff_num_trusted_hops: 0,
    internal_address_config: note("Only loopback is internal: compose-network clients are external (x-envoy-* sanitised).", {
      cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }],
    }),
    generate_request_id: true,
    preserve_external_request_id: note("Keep a client's x-request-id (as the embedded edge does); generated otherwise.", true),
    always_set_request_id_in_response: true,
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "REJECT_REQUEST",
    request_headers_timeout: "10s",
    max_request_headers_kb: note("Request headers in all: over this, 431 (Node's default, as the embedded edge).", s.max_request_headers_kb),
    stream_idle_timeout: "60s",
    common_http_protocol_options: { idle_timeout: "300s", headers_with_underscores_action: "REJECT_REQUEST" },
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 },
    tracing: {
      random_sampling: { value: s.tracing.sampling_percent },
      spawn_upstream_span: note("A client span per upstream call (router egress), parent of the service's server span.", true),
      provider: {
        name: "envoy.tracers.opentelemetry",
        typed_config: {
          "@type": T("envoy.config.trace.v3.OpenTelemetryConfig"),
          grpc_service: { envoy_grpc: { cluster_name: "otlp" }, timeout: "1s" },
          service_name: s.tracing.service_name,
        },
      },
    },
    access_log: [note("One JSON line per request, with the request id and the W3C trace id.", accessLog)],
    local_reply_config: note(
      "Envoy's own answers (jwt_authn 401/403, transcoder 400/404, rate-limit 429s, router 503s, 413)\n" +
      "carry the product's one JSON error body, {\"code\": <google.rpc.Code>, \"message\": ...}, from the\n" +
      "table the embedded edge uses (edge/errors.ts LOCAL_REPLIES), and the security headers (the\n" +
      "virtual host's response_headers_to_add are certain only on upstream answers). gRPC requests\n" +
      "keep Envoy's grpc-status/grpc-message. The first mapper that matches a reply applies.",
      { mappers: localReplyMappers(s) },
    ),
    route_config: routeConfig(s, contract),
    http_filters: httpFilters(s, contract),
  };
}
