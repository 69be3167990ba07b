// envoy/settings.yaml: the deployment inputs of the generator (hosts, ports,
// mounted files, CORS origins, limits), and the files the generator reads and writes.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const ENVOY_YAML = `${root}envoy/envoy.yaml`;
export const SETTINGS_YAML = `${root}envoy/settings.yaml`;
/** The OpenAPI document docker-compose.yml mounts at settings.openapi_document. */
export const OPENAPI_JSON = `${root}gen/openapi.json`;

export interface HostPort { host: string; port: number }
export interface EdgeSettings {
  listen_address: string;
  listener_port: number;
  admin_address: string;
  admin_port: number;
  descriptor_set: string;
  openapi_document: string;
  /** Where swagger-ui-dist's files served under /docs/ are (docker-compose.yml mounts them from node_modules). */
  swagger_ui_dist: string;
  max_direct_response_body_bytes: number;
  /** Size of all request headers together (the embedded edge: Node's 16 KiB). */
  max_request_headers_kb: number;
  /** Connection limits of both listeners (the services' equivalents: platform/config.ts). */
  connection_limits: {
    headers_timeout: string; request_timeout: string; idle_timeout: string; stream_idle_timeout: string;
    max_connections: number; max_concurrent_streams: number; max_headers_count: number;
    initial_stream_window_size: number; initial_connection_window_size: number;
  };
  /** The HTTPS listener: its port and certificate files (PEM). */
  tls: { listener_port: number; certificate_chain: string; private_key: string };
  /** Envoy's readiness path on the listener (health_check filter). */
  health_path: string;
  upstreams: Record<string, HostPort>;
  jwt: {
    provider: string; issuer: string; audiences: string[]; jwks_upstream: string;
    jwks_path: string; jwks_cache_duration: string; clock_skew_seconds: number;
  };
  ratelimit: HostPort & { domain: string; timeout: string; failure_mode_deny: boolean };
  local_rate_limit: { max_tokens: number; tokens_per_fill: number; fill_interval: string };
  tracing: HostPort & { service_name: string; sampling_percent: number };
  cors: { allowed_origins: string[]; max_age_seconds: number };
  strip_request_header_prefixes: string[];
  keep_request_headers: string[];
  response_headers: Record<string, string>;
}

export function loadSettings(path = SETTINGS_YAML): EdgeSettings {
  return parse(readFileSync(path, "utf8")) as EdgeSettings;
}
