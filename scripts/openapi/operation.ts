// One OpenAPI operation per google.api.http binding of an RPC: path, query and
// body parameters, the response, and the (acme.edge.v1.policy) security.
import { getOption, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Access, policy as policyExt } from "../../gen/acme/edge/v1/policy_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { BEARER, rateHeaderRefs } from "./components.js";
import { openApiPath } from "./openapi-path.js";
import { wellKnown, type Json, type Schema } from "./proto-json.js";
import type { SchemaBuilder } from "./schema-builder.js";

/** Raw (google.api.HttpBody) responses: media types and schema per RPC; others get any bytes. */
const rawBodies: Record<string, { media: string[]; schema: Schema }> = {
  "acme.auth.v1.AuthService.GetJwks": {
    media: ["application/jwk-set+json"],
    schema: {
      type: "object",
      description: "JSON Web Key Set (RFC 7517): the public keys that verify access tokens.",
      required: ["keys"],
      properties: {
        keys: {
          type: "array",
          items: {
            type: "object",
            description: "A public JWK (RFC 7517), e.g. {kty: EC, crv: P-256, x, y, kid, alg: ES256, use: sig}.",
            required: ["kty", "kid"],
            properties: {
              kty: { type: "string" },
              kid: { type: "string" },
              alg: { type: "string" },
              use: { type: "string" },
              crv: { type: "string" },
              x: { type: "string" },
              y: { type: "string" },
            },
          },
        },
      },
    },
  },
};

const HTTP_VERBS = ["get", "put", "post", "delete", "patch"] as const;
const accessName = (a: Access) => `ACCESS_${Access[a]}`;

/** Resolves "order.id" to the fields along the way. */
function fieldPathOf(msg: DescMessage, fieldPath: string): DescField[] {
  const out: DescField[] = [];
  let cur: DescMessage | undefined = msg;
  for (const name of fieldPath.split(".")) {
    const f: DescField | undefined = cur?.fields.find((x) => x.name === name);
    if (!f) throw new Error(`${msg.typeName} has no field path ${fieldPath}`);
    out.push(f);
    cur = f.fieldKind === "message" ? f.message : undefined;
  }
  return out;
}

/** The operation of one http rule of an RPC (binding 0 is the rule itself, then its additional_bindings). */
export function operation(b: SchemaBuilder, service: DescService, method: DescMethod, rule: HttpRule, binding: number): { verb: string; path: string; op: Schema } {
  const where = `${service.typeName}.${method.name}`;
  let verb: string;
  let template: string;
  if (rule.pattern.case === "custom") {
    verb = rule.pattern.value.kind.toLowerCase();
    template = rule.pattern.value.path;
    if (!["head", "options", "trace"].includes(verb)) throw new Error(`${where}: custom verb ${verb} not supported`);
  } else if (rule.pattern.case && (HTTP_VERBS as readonly string[]).includes(rule.pattern.case)) {
    verb = rule.pattern.case;
    template = rule.pattern.value;
  } else {
    throw new Error(`${where}: http rule has no pattern`);
  }
  const { path, vars } = openApiPath(template);
  const input = method.input;
  const parameters: Json[] = [];
  const bound = new Set<string>(); // proto field paths bound by the path

  for (const v of vars) {
    const chain = fieldPathOf(input, v.fieldPath);
    const leaf = chain[chain.length - 1];
    if (leaf.fieldKind !== "scalar" && leaf.fieldKind !== "enum") throw new Error(`${where}: path variable ${v.fieldPath} is not a scalar`);
    bound.add(v.fieldPath);
    const { description, ...schema } = b.fieldSchema(leaf);
    const text = [description, v.pattern ? `Matches ${v.pattern}.` : ""].filter(Boolean).join(" ");
    parameters.push({ name: v.fieldPath, in: "path", required: true, ...(text ? { description: text } : {}), schema });
  }

  // Request body.
  let requestBody: Schema | undefined;
  const topBound = new Set([...bound].filter((p) => !p.includes(".")));
  if (rule.body === "*") {
    const schema = topBound.size ? b.objectSchema(input, topBound) : b.messageSchema(input);
    // An empty request message may be sent as {} or no body at all.
    const required = input.fields.some((f) => !topBound.has(f.name));
    requestBody = { required, content: { "application/json": { schema } } };
  } else if (rule.body) {
    const [f] = fieldPathOf(input, rule.body);
    requestBody = { required: true, content: { "application/json": { schema: b.fieldSchema(f) } } };
  }

  // Query parameters: every field neither in the path nor in the body.
  if (rule.body !== "*") {
    const visit = (m: DescMessage, protoPrefix: string, jsonPrefix: string, seen: Set<string>) => {
      for (const f of m.fields) {
        const protoPath = protoPrefix + f.name;
        if (bound.has(protoPath) || (protoPrefix === "" && f.name === rule.body)) continue;
        const name = jsonPrefix + f.jsonName;
        const isWkt = f.fieldKind === "message" && wellKnown(f.message.typeName);
        if (f.fieldKind === "message" && !isWkt) {
          if (seen.has(f.message.typeName)) continue;
          visit(f.message, `${protoPath}.`, `${name}.`, new Set([...seen, f.message.typeName]));
          continue;
        }
        if (f.fieldKind === "map" || (f.fieldKind === "list" && f.listKind === "message")) continue;
        const schema = b.fieldSchema(f);
        const { description, ...rest } = schema;
        parameters.push({ name, in: "query", ...(description ? { description } : {}), schema: rest });
      }
    };
    visit(input, "", "", new Set([input.typeName]));
  }

  // Response.
  let out: DescMessage = method.output;
  let responseSchema: Schema | undefined;
  if (rule.responseBody) {
    const [f] = fieldPathOf(out, rule.responseBody);
    if (f.fieldKind === "message" && f.message.typeName === "google.api.HttpBody") out = f.message;
    else responseSchema = b.fieldSchema(f);
  }
  let content: Schema;
  if (out.typeName === "google.api.HttpBody") {
    const raw = rawBodies[where];
    content = raw
      ? Object.fromEntries(raw.media.map((m) => [m, { schema: raw.schema }]))
      : { "*/*": { schema: { description: "Raw bytes (google.api.HttpBody); the RPC sets the content type." } } };
  } else {
    content = { "application/json": { schema: responseSchema ?? b.messageSchema(out) } };
  }

  const p = getOption(method, policyExt);
  const access = p.access === Access.UNSPECIFIED ? Access.AUTHENTICATED : p.access;
  const isPublic = access === Access.PUBLIC;
  const headers = rateHeaderRefs();
  const responses: Schema = { "200": { description: "OK", headers, content } };
  if (parameters.length || requestBody) responses["400"] = { $ref: "#/components/responses/BadRequest" };
  if (!isPublic) responses["401"] = { $ref: "#/components/responses/Unauthenticated" };
  if (!isPublic || p.roles.length) responses["403"] = { $ref: "#/components/responses/PermissionDenied" };
  if (vars.length) responses["404"] = { $ref: "#/components/responses/NotFound" };
  responses["429"] = { $ref: "#/components/responses/TooManyRequests" };
  responses.default = { $ref: "#/components/responses/Error" };

  const comment = b.describe({}, where).description as string | undefined;
  const notes = [
    p.owner
      ? `Only the user named by \`${p.owner}\`${p.roles.length ? `, or a caller with role ${p.roles.join(" or ")},` : ""} may call it; anyone else gets 404, as for a user that does not exist.`
      : p.roles.length ? `Requires role: ${p.roles.join(" or ")}.` : "",
    isPublic ? "Public: no token needed." : "",
  ].filter(Boolean);
  const summary = comment?.split("\n")[0];
  const description = [comment === summary ? "" : comment, ...notes].filter(Boolean).join("\n\n");
  const op: Schema = {
    operationId: `${service.name}_${method.name}${binding ? `_${binding}` : ""}`,
    tags: [service.name],
    ...(summary ? { summary } : {}),
    ...(description ? { description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
    security: isPublic ? [] : [{ [BEARER]: [] }],
    "x-acme-rpc": `/${service.typeName}/${method.name}`,
    "x-acme-policy": { access: accessName(access), roles: [...p.roles], ...(p.owner ? { owner: p.owner } : {}), rateLimit: p.rateLimit || "default" },
  };
  if (method.deprecated) op.deprecated = true;
  return { verb, path, op };
}
