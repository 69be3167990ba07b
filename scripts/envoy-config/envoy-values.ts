// Envoy names and value builders that more than one part of the config uses.

/** The type URL of an Envoy API message, for "@type". */
export const T = (name: string) => `type.googleapis.com/${name}`;
export const setHeaders = (h: Record<string, string>) => Object.entries(h).map(([key, value]) => ({
  header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
}));
export const JWT_FILTER = "envoy.filters.http.jwt_authn";
export const TRANSCODER = "envoy.filters.http.grpc_json_transcoder";
export const CONNECT_BRIDGE = "envoy.filters.http.connect_grpc_bridge";
export const BUFFER = "envoy.filters.http.buffer";
/** Where jwt_authn puts the verified token's payload (dynamic metadata of JWT_FILTER). */
export const JWT_PAYLOAD = "jwt_payload";
/** The cluster with no endpoints behind the rest-before-transcoding route. */
export const NO_UPSTREAM = "no_upstream";
/** Which listener a connection manager serves: plain HTTP, or HTTPS (TLS terminated before it). */
export type ListenerKind = "plain" | "tls";
/**
 * Dynamic metadata the first filter (Lua) sets, for the local reply mappers (never a header, so
 * it never reaches the services and a client cannot set it): "filtered" on every request the
 * filters see (a local reply without it is one of the connection manager's own early refusals:
 * bad path, codec error); "connect" on a Connect call (a method path with Connect's headers),
 * whose marks connect_grpc_bridge removes.
 */
export const EDGE_METADATA = "acme.edge";
export const FILTERED_MARK = "filtered";
export const CONNECT_MARK = "connect";
