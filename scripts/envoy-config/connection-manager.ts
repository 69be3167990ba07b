// The HTTP connection manager of the edge listener: request ids, path
// normalisation, timeouts, tracing, the access log, local replies, and the
// route table and filter chain it runs.
import { Code } from "@connectrpc/connect";
import { LOCAL_REPLIES } from "../../edge/errors.js";
import { note } from "./commented-yaml.js";
import type { EdgeContract } from "./contract.js";
import { CONNECT_MARK, EDGE_METADATA, FILTERED_MARK, JWT_FILTER, JWT_PAYLOAD, setHeaders, T, type ListenerKind } from "./envoy-values.js";
import { httpFilters } from "./http-filters.js";
import { GRPC_METHOD_PATH, routeConfig } from "./routes.js";
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

const header = (name: string, string_match: Record<string, unknown>, invert_match = false) =>
  ({ header_filter: { header: { name, string_match, invert_match, treat_missing_header_as_empty: true } } });
const present = (name: string, present_match = true) => ({ header_filter: { header: { name, present_match } } });
/** The Lua filter's marks (envoy-values.ts EDGE_METADATA; always `true` when set), set or not. */
const marked = (key: string, set = true) => ({
  metadata_filter: {
    matcher: { filter: EDGE_METADATA, path: [{ key }], value: { bool_match: set } },
    match_if_key_not_found: !set,
  },
});
/** Transcoded REST: the transcoder keeps the REST path in x-envoy-original-path (the header strip removes a client's). */
const transcoded = present("x-envoy-original-path");
const notTranscoded = present("x-envoy-original-path", false);

/**
 * REST requests: those that are not gRPC, and those the transcoder turned into gRPC (it sets
 * x-envoy-original-path, which the header strip removes from what clients send). Their local
 * replies get the JSON body; gRPC clients keep Envoy's grpc-status and grpc-message.
 */
const isRest = {
  or_filter: {
    filters: [header("content-type", { prefix: "application/grpc" }, true), transcoded],
  },
};

/**
 * Connect calls: a method path (never a REST path, whatever headers a REST call carries) with
 * connect-protocol-version or a Connect streaming content-type. The Lua filter marks them before
 * connect_grpc_bridge makes them gRPC (Envoy's own refusals are not gRPC answers the bridge
 * converts back); a refusal before the filters (no mark) is judged on the request's headers.
 */
const isConnect = {
  or_filter: {
    filters: [
      marked(CONNECT_MARK),
      {
        and_filter: {
          filters: [
            marked(FILTERED_MARK, false),
            notTranscoded,
            header(":path", { safe_regex: { regex: GRPC_METHOD_PATH } }),
            { or_filter: { filters: [present("connect-protocol-version"), header("content-type", { prefix: "application/connect+" })] } },
          ],
        },
      },
    ],
  },
};

/** Native gRPC (and gRPC-Web, whose content-type grpc_web has made gRPC): not transcoded. */
const isGrpc = { and_filter: { filters: [header("content-type", { prefix: "application/grpc" }), notTranscoded, marked(CONNECT_MARK, false)] } };

/** The connection manager's own early refusals (bad path, codec): no filter ran, so the header strip's mark is absent. */
const beforeFilters = marked(FILTERED_MARK, false);

const jsonError = (code: number | string, message: string) => ({
  json_format: { code, message },
  content_type: "application/json",
});

/** "ResourceExhausted" -> "resource_exhausted": the Connect protocol's code names. */
const connectCode = (c: Code) => Code[c].replace(/(?<=[a-z])([A-Z])/g, "_$1").toLowerCase();

/**
 * The gRPC status of Envoy's own refusals of a method call where Envoy's HTTP -> gRPC mapping is
 * wrong for the client (400 -> INTERNAL, 413/431/405 -> UNKNOWN, 429 -> UNAVAILABLE for gRPC-Web): set as grpc-status on gRPC's
 * trailers-only answer (Envoy keeps a grpc-status the mapper set), and for Connect the code.
 * 404 on a method path is an unknown method: UNIMPLEMENTED (Envoy's mapping already, for gRPC).
 */
export const RPC_REFUSALS: Readonly<Record<number, { code: Code; message: string; replaceText?: boolean }>> = {
  400: { code: Code.InvalidArgument, message: LOCAL_REPLIES[400].message },
  404: { code: Code.Unimplemented, message: "unknown method: this edge does not serve it", replaceText: true },
  405: { code: Code.Unimplemented, message: LOCAL_REPLIES[405].message, replaceText: true },
  408: { code: Code.DeadlineExceeded, message: LOCAL_REPLIES[408].message, replaceText: true },
  413: { code: Code.ResourceExhausted, message: LOCAL_REPLIES[413].message, replaceText: true },
  431: { code: Code.ResourceExhausted, message: LOCAL_REPLIES[431].message, replaceText: true },
  // Rate limits: gRPC-Web's HTTP 429 would become UNAVAILABLE (14), which tells a client to retry at once.
  429: { code: Code.ResourceExhausted, message: LOCAL_REPLIES[429].message, replaceText: LOCAL_REPLIES[429].replaceText },
};

function localReplyMappers(s: EdgeSettings) {
  const status = (n: number) => statusIs("EQ", n, `edge.local_reply.status_${n}`);
  const replyHeaders = (st: number) => st === 429
    ? note("retry-after = the refusing window's x-ratelimit-reset, set by the ratelimit filter before this\n" +
      "runs. The local backstop's 429 has no x-ratelimit-reset (an empty value adds nothing) and carries\n" +
      "its own retry-after.", setHeaders({ "retry-after": "%RESP(X-RATELIMIT-RESET)%", ...s.response_headers }))
    : setHeaders(s.response_headers);
  const connect = Object.entries(LOCAL_REPLIES).map(([st, kind]) => {
    const k = RPC_REFUSALS[Number(st)] ?? kind;
    return note(`Connect, ${st}: ${connectCode(k.code)}, ${k.replaceText ? `"${k.message}"` : "Envoy's own text"}.`, {
      filter: { and_filter: { filters: [status(Number(st)), isConnect] } },
      headers_to_add: replyHeaders(Number(st)),
      body_format_override: jsonError(connectCode(k.code), k.replaceText ? k.message : "%LOCAL_REPLY_BODY%"),
    });
  });
  const grpc = Object.entries(RPC_REFUSALS).filter(([st]) => st !== "404").map(([st, k]) => note(
    `gRPC, ${st}: grpc-status ${k.code} (${Code[k.code]}), grpc-message ${k.replaceText ? `"${k.message}"` : "Envoy's own text"}.`, {
      filter: { and_filter: { filters: [status(Number(st)), isGrpc] } },
      headers_to_add: setHeaders({
        "grpc-status": String(k.code),
        ...(st === "429" ? { "retry-after": "%RESP(X-RATELIMIT-RESET)%" } : {}),
        ...s.response_headers,
      }),
      body_format_override: { text_format_source: { inline_string: k.replaceText ? k.message : "%LOCAL_REPLY_BODY%" } },
    }));
  const errors = Object.entries(LOCAL_REPLIES).map(([st, kind]) => {
    const headers = replyHeaders(Number(st));
    return note(`${st}: ${Code[kind.code]}, ${kind.replaceText ? `"${kind.message}"` : "Envoy's own text"}.`, {
      filter: { and_filter: { filters: [status(Number(st)), isRest] } },
      headers_to_add: headers,
      body_format_override: jsonError(kind.code, kind.replaceText ? kind.message : "%LOCAL_REPLY_BODY%"),
    });
  });
  return [
    note("Connect calls get Connect's error body, {\"code\": \"<code>\", \"message\": ...}. First a 400 of the\nconnection manager itself (no filter ran, no text).", {
      filter: { and_filter: { filters: [status(400), isConnect, beforeFilters] } },
      headers_to_add: setHeaders(s.response_headers),
      body_format_override: jsonError(connectCode(Code.InvalidArgument), LOCAL_REPLIES[400].message),
    }),
    note("A Connect call sent with a gRPC content-type, refused 415 by the Lua filter: Envoy answers it as\ngRPC (trailers-only), so INVALID_ARGUMENT rather than its mapping's UNKNOWN.", {
      filter: { and_filter: { filters: [status(415), marked(CONNECT_MARK), header("content-type", { prefix: "application/grpc" })] } },
      headers_to_add: setHeaders({ "grpc-status": String(Code.InvalidArgument), ...s.response_headers }),
      body_format_override: { text_format_source: { inline_string: "%LOCAL_REPLY_BODY%" } },
    }),
    ...connect,
    note("Connect, any other error status: unknown with Envoy's text.", {
      filter: { and_filter: { filters: [statusIs("GE", 400, "edge.local_reply.min_error_status"), isConnect] } },
      headers_to_add: setHeaders(s.response_headers),
      body_format_override: jsonError(connectCode(Code.Unknown), "%LOCAL_REPLY_BODY%"),
    }),
    ...grpc,
    note("gRPC, 404 (an internal service, an unknown method, a REST path sent as gRPC): grpc-status 12\n" +
      "(UNIMPLEMENTED), Envoy's mapping for native gRPC, set here for gRPC-Web too (its HTTP 404 had none).", {
      filter: { and_filter: { filters: [status(404), isGrpc] } },
      headers_to_add: setHeaders({ "grpc-status": String(RPC_REFUSALS[404].code), ...s.response_headers }),
    }),
    note(`REST, 400 from the connection manager itself (a path it refuses: %00, %2F, a fragment; a codec\nerror): no filter ran and Envoy has no text, so "${LOCAL_REPLIES[400].message}".`, {
      filter: { and_filter: { filters: [status(400), isRest, beforeFilters] } },
      headers_to_add: setHeaders(s.response_headers),
      body_format_override: jsonError(LOCAL_REPLIES[400].code, LOCAL_REPLIES[400].message),
    }),
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

export function connectionManager(s: EdgeSettings, contract: EdgeContract, kind: ListenerKind = "plain") {
  const l = s.connection_limits;
  return {
    "@type": T("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
    stat_prefix: kind === "tls" ? "edge_tls" : "edge",
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
    request_headers_timeout: note("Connection limits (envoy/settings.yaml connection_limits): the services' bounds (README \"Limits\").", l.headers_timeout),
    request_timeout: l.request_timeout,
    max_request_headers_kb: note("Request headers in all: over this, 431 (Node's default, as the embedded edge).", s.max_request_headers_kb),
    stream_idle_timeout: l.stream_idle_timeout,
    common_http_protocol_options: {
      idle_timeout: l.idle_timeout,
      max_headers_count: l.max_headers_count,
      headers_with_underscores_action: "REJECT_REQUEST",
    },
    http2_protocol_options: {
      max_concurrent_streams: l.max_concurrent_streams,
      initial_stream_window_size: l.initial_stream_window_size,
      initial_connection_window_size: l.initial_connection_window_size,
    },
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
    http_filters: httpFilters(s, contract, kind),
  };
}
