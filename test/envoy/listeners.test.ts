// The two listeners of envoy/envoy.yaml (docs/tls.md): plain HTTP and HTTPS serve the
// same API (one route table, one filter chain but for their first filters); TLS 1.2+
// with ALPN h2/http1.1 and the settings' certificate; HSTS on the HTTPS listener only;
// the plain one redirects browser navigations to the HTTPS port. And the connection
// limits on both equal the services' own defaults (README "Limits").
import assert from "node:assert/strict";
import { HSTS } from "../../edge/headers.js";
import { loadConfig } from "../../platform/config.js";
import { copyOf, hcm, listener, loadInputs, type Inputs, type Json } from "./inputs.js";

const HCM_FILTERS = (h: Json) => h.http_filters.map((f: Json) => f.name);
const seconds = (ms: number) => `${ms / 1000}s`;
const luaOf = (h: Json) => h.http_filters.find((f: Json) => f.name === "envoy.filters.http.lua").typed_config.default_source_code.inline_string as string;

/** Problems with the listeners (empty = fine). */
function checkListeners(i: Inputs): string[] {
  const problems: string[] = [];
  const need = (cond: boolean, msg: string) => { if (!cond) problems.push(msg); };
  const plain = hcm(i.envoy, "edge");
  const secure = hcm(i.envoy, "edge_tls");
  const tlsListener = listener(i.envoy, "edge_tls");
  need(listener(i.envoy, "edge").address.socket_address.port_value === i.settings.listener_port, "plain listener not on listener_port");
  need(tlsListener.address.socket_address.port_value === i.settings.tls.listener_port, "HTTPS listener not on tls.listener_port");
  need(!listener(i.envoy, "edge").filter_chains[0].transport_socket, "the plain listener has a transport socket");

  const ctx = tlsListener.filter_chains[0].transport_socket?.typed_config ?? {};
  need(ctx["@type"]?.endsWith("DownstreamTlsContext"), "HTTPS listener: no DownstreamTlsContext");
  const common = ctx.common_tls_context ?? {};
  need(common.tls_params?.tls_minimum_protocol_version === "TLSv1_2", "HTTPS listener: TLS below 1.2 allowed");
  need(JSON.stringify(common.alpn_protocols) === JSON.stringify(["h2", "http/1.1"]), "HTTPS listener: ALPN must offer h2 and http/1.1");
  const cert = common.tls_certificates?.[0] ?? {};
  need(cert.certificate_chain?.filename === i.settings.tls.certificate_chain && cert.private_key?.filename === i.settings.tls.private_key,
    "HTTPS listener: certificate files are not the settings'");
  need(!!tlsListener.filter_chains[0].transport_socket_connect_timeout, "HTTPS listener: no handshake timeout");

  // The same API on both: one route table, the same filters after the first ones.
  for (const k of ["route_config", "local_reply_config", "common_http_protocol_options", "http2_protocol_options", "request_headers_timeout", "request_timeout", "stream_idle_timeout", "max_request_headers_kb", "use_remote_address"]) {
    need(JSON.stringify(plain[k]) === JSON.stringify(secure[k]), `${k} differs between the listeners`);
  }
  const hstsFilter = "envoy.filters.http.header_mutation";
  need(JSON.stringify(HCM_FILTERS(secure)) === JSON.stringify([hstsFilter, ...HCM_FILTERS(plain)]), `HTTPS filters must be [${hstsFilter}, ...the plain listener's]`);
  need(JSON.stringify(plain.http_filters.slice(1)) === JSON.stringify(secure.http_filters.slice(2)), "the filters after the Lua filter differ between the listeners");

  // HSTS: every answer over TLS, never over plain HTTP.
  const mutation = secure.http_filters[0]?.typed_config?.mutations?.response_mutations?.[0]?.append ?? {};
  need(mutation.header?.key === "strict-transport-security" && mutation.header?.value === HSTS && mutation.append_action === "OVERWRITE_IF_EXISTS_OR_ADD",
    `HTTPS listener: first filter must set strict-transport-security: ${HSTS}`);
  need(!JSON.stringify(plain).includes("strict-transport-security"), "the plain listener sends HSTS");

  // Browser navigations on the plain listener go to the HTTPS port; not on the HTTPS listener.
  need(luaOf(plain).includes(`":${i.settings.tls.listener_port}"`) && luaOf(plain).includes("upgrade-insecure-requests"), "plain listener: no redirect of browser navigations to the HTTPS port");
  need(!luaOf(secure).includes("upgrade-insecure-requests"), "HTTPS listener redirects");
  return problems;
}

/** Envoy's connection limits against the services' defaults (platform/config.ts). */
function checkLimits(i: Inputs): string[] {
  const problems: string[] = [];
  const svc = loadConfig({}).limits;
  const expect = (what: string, got: unknown, want: unknown) => { if (got !== want) problems.push(`${what}: Envoy ${got}, the services ${want}`); };
  for (const name of ["edge", "edge_tls"] as const) {
    const h = hcm(i.envoy, name);
    expect(`${name} request_headers_timeout`, h.request_headers_timeout, seconds(svc.headersTimeoutMs));
    expect(`${name} request_timeout`, h.request_timeout, seconds(svc.requestTimeoutMs));
    expect(`${name} idle_timeout`, h.common_http_protocol_options?.idle_timeout, seconds(svc.idleTimeoutMs));
    expect(`${name} max_concurrent_streams`, h.http2_protocol_options?.max_concurrent_streams, svc.maxConcurrentStreams);
    expect(`${name} max_headers_count`, h.common_http_protocol_options?.max_headers_count, svc.maxHeaderCount);
    expect(`${name} max_request_headers_kb`, h.max_request_headers_kb * 1024, svc.maxHeaderBytes);
  }
  const monitor = i.envoy.overload_manager?.resource_monitors?.find((m: Json) => m.name === "envoy.resource_monitors.global_downstream_max_connections");
  expect("max connections (overload manager)", monitor?.typed_config?.max_active_downstream_connections, svc.maxConnections);
  expect("TLS handshake timeout", listener(i.envoy, "edge_tls").filter_chains[0].transport_socket_connect_timeout, seconds(svc.headersTimeoutMs));
  return problems;
}

describe("envoy/envoy.yaml listeners: plain HTTP and HTTPS, and their limits", () => {
  let base: Inputs;
  before(() => { base = loadInputs(); });
  const has = (problems: string[], re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `expected ${re} in:\n${problems.join("\n") || "(none)"}`);
  const broken = (mutate: (i: Inputs) => void) => { const i = copyOf(base); mutate(i); return i; };

  it("serve the same API; the HTTPS one with TLS 1.2+, ALPN and HSTS; the plain one redirects browsers", () => {
    assert.deepEqual(checkListeners(base), []);
  });

  it("set the services' connection limits (README \"Limits\")", () => {
    assert.deepEqual(checkLimits(base), []);
  });

  describe("catches a broken copy", () => {
    it("TLS 1.0 allowed", () => {
      has(checkListeners(broken((x) => { listener(x.envoy, "edge_tls").filter_chains[0].transport_socket.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version = "TLSv1_0"; })), /TLS below 1\.2/);
    });
    it("HSTS on the plain listener", () => {
      has(checkListeners(broken((x) => { const h = hcm(x.envoy, "edge"); h.http_filters = [hcm(x.envoy, "edge_tls").http_filters[0], ...h.http_filters]; })), /plain listener sends HSTS/);
    });
    it("no HSTS on the HTTPS listener", () => {
      has(checkListeners(broken((x) => { hcm(x.envoy, "edge_tls").http_filters.shift(); })), /first filter must set strict-transport-security/);
    });
    it("a route table that differs between the listeners", () => {
      has(checkListeners(broken((x) => { hcm(x.envoy, "edge_tls").route_config = { ...hcm(x.envoy, "edge_tls").route_config, name: "other" }; })), /route_config differs/);
    });
    it("an idle timeout other than the services'", () => {
      has(checkLimits(broken((x) => { hcm(x.envoy, "edge").common_http_protocol_options = { ...hcm(x.envoy, "edge").common_http_protocol_options, idle_timeout: "300s" }; })), /edge idle_timeout: Envoy 300s, the services 65s/);
    });
    it("no request timeout", () => {
      has(checkLimits(broken((x) => { delete hcm(x.envoy, "edge_tls").request_timeout; })), /edge_tls request_timeout: Envoy undefined/);
    });
  });
});
