// Envoy names and value builders that more than one part of the config uses.

/** The type URL of an Envoy API message, for "@type". */
export const T = (name: string) => `type.googleapis.com/${name}`;
export const setHeaders = (h: Record<string, string>) => Object.entries(h).map(([key, value]) => ({
  header: { key, value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
}));
export const JWT_FILTER = "envoy.filters.http.jwt_authn";
export const TRANSCODER = "envoy.filters.http.grpc_json_transcoder";
/** Where jwt_authn puts the verified token's payload (dynamic metadata of JWT_FILTER). */
export const JWT_PAYLOAD = "jwt_payload";
/** The cluster with no endpoints behind the rest-before-transcoding route. */
export const NO_UPSTREAM = "no_upstream";
