// The shared parts of the document that operations point at: error responses,
// rate-limit headers and the bearer security scheme.
import type { Schema } from "./proto-json.js";
import { ref } from "./schema-builder.js";

export const BEARER = "bearerAuth";
/** Rate-limit headers the edges add to routed responses (Envoy's draft 03 x-ratelimit-*). */
const RATE_HEADERS = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];

/** $refs to the rate-limit headers, for a response's headers. */
export const rateHeaderRefs = (): Schema => Object.fromEntries(RATE_HEADERS.map((h) => [h, { $ref: `#/components/headers/${h}` }]));

/** components: the given schemas, then the responses, headers and security schemes. */
export function components(schemas: Schema): Schema {
  // Every error is google.rpc.Status as JSON: a service's (convert_grpc_status),
  // and the edge's own refusals before any service runs (Envoy's local replies
  // and the embedded edge's, edge/errors.ts LOCAL_REPLIES), which carry code and
  // message only; `edge` describes the message those give.
  const statusJson = { schema: ref("google.rpc.Status") };
  const errorResponse = (description: string, edge?: string, headers?: Schema): Schema => ({
    description: edge ? `${description} The edge's own refusal: ${edge}` : description,
    ...(headers ? { headers } : {}),
    content: { "application/json": statusJson },
  });
  const header = (description: string, schema: Schema = { type: "string" }): Schema => ({ description, schema });
  return {
    schemas,
    responses: {
      BadRequest: errorResponse(
        "INVALID_ARGUMENT (3) or FAILED_PRECONDITION (9) from the service, with google.rpc.BadRequest details naming the bad fields; " +
          "or a request the edge cannot transcode (malformed JSON, unknown query parameter).",
        "code 3 with the edge's reason, e.g. an unknown query parameter.",
      ),
      Unauthenticated: errorResponse(
        "Missing, malformed, expired or revoked bearer token.",
        'code 16 with the JWT check\'s reason: "Jwt is missing", "Jwt is expired", "Jwt verification fails", ...',
        { "www-authenticate": header('Bearer realm="<url>"[, error="invalid_token"]') },
      ),
      PermissionDenied: errorResponse(
        "PERMISSION_DENIED (7): the caller lacks a required role, or the token's audience is not allowed.",
        'code 7, "Audiences in Jwt are not allowed".',
      ),
      NotFound: errorResponse("NOT_FOUND (5): no such resource, or not visible to the caller."),
      TooManyRequests: errorResponse(
        "Rate limited by the edge, or RESOURCE_EXHAUSTED (8) from the service. Retry after retry-after seconds.",
        'code 8, "rate limit exceeded".',
        { ...rateHeaderRefs(), "retry-after": header("Seconds until the refusing window resets.", { type: "integer" }) },
      ),
      Error: errorResponse(
        "Any other error, as google.rpc.Status; the HTTP status follows the gRPC code " +
          "(ALREADY_EXISTS 409, ABORTED 409, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, INTERNAL 500, ...).",
      ),
    },
    headers: {
      "x-ratelimit-limit": header(
        'Limit of the window with the fewest requests left, then every applicable limit as a quota policy, e.g. "3, 20;w=1, 3;w=1, 100;w=60".',
      ),
      "x-ratelimit-remaining": header("Requests left in that window.", { type: "integer" }),
      "x-ratelimit-reset": header("Seconds until that window resets.", { type: "integer" }),
    },
    securitySchemes: {
      [BEARER]: {
        type: "http",
        scheme: "bearer",
        bearerFormat: "JWT",
        description: "Access token (tokens.accessToken from register, login or refresh), or a service token.",
      },
    },
  };
}
