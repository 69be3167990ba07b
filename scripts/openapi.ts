// OpenAPI 3.1 for the REST/JSON surface, generated from the contract.
//
// Reads the descriptor set gen/api.binpb (with source info, so proto comments
// become descriptions) and writes gen/openapi.json. `npm run generate` runs it
// after `buf build`, so the freshness check of gen/ in `npm test` catches a
// stale document. By hand:
//   node --import tsx scripts/openapi.ts [--in gen/api.binpb] [--out gen/openapi.json]
//
// Mapping (the proto3 JSON mapping, as the transcoding edges speak it):
// - every google.api.http rule (and additional_bindings) of every service not
//   marked (acme.edge.v1.internal) is one operation; path variables
//   ({id}, {order.id}) are path parameters; with `body: "*"` the request
//   message (minus path fields) is the body; with `body: "<field>"` that field
//   is the body; every other field is a query parameter (lowerCamelCase JSON
//   name, nested messages flattened with dots);
// - responses follow `response_body`; google.api.HttpBody is raw bytes whose
//   media type the RPC chooses (see rawBodies);
// - fields use their JSON names; 64-bit integers are strings, enums are
//   strings, Timestamp is an RFC 3339 date-time string, Duration "1.5s",
//   FieldMask a comma-separated string, wrappers are nullable;
// - (acme.edge.v1.policy): public RPCs have `security: []`, all others require
//   the bearer JWT; roles and the rate-limit class are in x-acme-policy;
// - every error is google.rpc.Status as JSON: {code, message, details} from the
//   services, {code, message} from the edge's own refusals (JWT, rate limit,
//   untranscodable request); x-ratelimit-* headers are on routed responses.
//
// The parts, in scripts/openapi/: document.ts (the whole document), operation.ts
// (one per http rule), schema-builder.ts and proto-json.ts (message and field
// schemas), components.ts (shared responses and headers), openapi-path.ts (paths),
// comments.ts (proto comments as descriptions).
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { openApiFromDescriptorSet } from "./openapi/document.js";
import type { Schema } from "./openapi/proto-json.js";

export { openApiFromDescriptorSet, type OpenApiOptions } from "./openapi/document.js";
export { openApiPath } from "./openapi/openapi-path.js";

/** Stable text: two-space JSON with a final newline. */
export function renderOpenApi(doc: Schema): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function writeOpenApi(binpb: string, out: string) {
  writeFileSync(out, renderOpenApi(openApiFromDescriptorSet(readFileSync(binpb))));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const root = new URL("..", import.meta.url).pathname;
  writeOpenApi(resolve(root, arg("--in", "gen/api.binpb")), resolve(root, arg("--out", "gen/openapi.json")));
}
