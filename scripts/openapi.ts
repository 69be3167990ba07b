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
// - errors from the services are google.rpc.Status as JSON: {code, message,
//   details}; refusals by the edge itself (JWT, rate limit, untranscodable
//   request) are Envoy-style text/plain local replies; x-ratelimit-* headers
//   are on routed responses.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  createFileRegistry,
  fromBinary,
  getOption,
  hasOption,
  ScalarType,
  type DescEnum,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Access, internal, policy as policyExt } from "../gen/acme/edge/v1/policy_pb.js";
import { http } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };

export interface OpenApiOptions {
  title?: string;
  version?: string;
}

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
const BEARER = "bearerAuth";
/** Rate-limit headers the edges add to routed responses (Envoy's draft 03 x-ratelimit-*). */
const RATE_HEADERS = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** Leading comments by fully qualified element name, from source_code_info. */
function commentsOf(files: readonly DescFile[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of files) {
    const proto: FileDescriptorProto = file.proto;
    const byPath = new Map<string, string>();
    for (const loc of proto.sourceCodeInfo?.location ?? []) {
      const text = loc.leadingComments
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => !l.startsWith("buf:lint:"))
        .join("\n")
        .trim();
      if (text) byPath.set(loc.path.join("."), text);
    }
    const pkg = proto.package ? `${proto.package}.` : "";
    const visitMessage = (m: FileDescriptorProto["messageType"][number], scope: string, path: number[]) => {
      const name = `${scope}${m.name}`;
      const put = (key: string, p: number[]) => byPath.has(p.join(".")) && out.set(key, byPath.get(p.join("."))!);
      put(name, path);
      m.field.forEach((f, i) => put(`${name}.${f.name}`, [...path, 2, i]));
      m.nestedType.forEach((n, i) => visitMessage(n, `${name}.`, [...path, 3, i]));
      m.enumType.forEach((e, i) => visitEnum(e, `${name}.`, [...path, 4, i]));
    };
    const visitEnum = (e: FileDescriptorProto["enumType"][number], scope: string, path: number[]) => {
      const name = `${scope}${e.name}`;
      if (byPath.has(path.join("."))) out.set(name, byPath.get(path.join("."))!);
      // Enum values share their enum's scope (C++ rules); key them under the enum.
      e.value.forEach((v, i) => {
        const c = byPath.get([...path, 2, i].join("."));
        if (c) out.set(`${name}.${v.name}`, c);
      });
    };
    proto.messageType.forEach((m, i) => visitMessage(m, pkg, [4, i]));
    proto.enumType.forEach((e, i) => visitEnum(e, pkg, [5, i]));
    proto.service.forEach((s, i) => {
      const name = `${pkg}${s.name}`;
      const c = byPath.get([6, i].join("."));
      if (c) out.set(name, c);
      s.method.forEach((m, j) => {
        const mc = byPath.get([6, i, 2, j].join("."));
        if (mc) out.set(`${name}.${m.name}`, mc);
      });
    });
  }
  return out;
}

interface PathVar {
  /** Proto field path, e.g. "order.id". */
  fieldPath: string;
  /** Sub-template when the variable is written {name=shelves/*}. */
  pattern?: string;
}

/** Parses a google.api.http path template into an OpenAPI path and its variables. */
export function parseTemplate(template: string): { path: string; vars: PathVar[] } {
  if (!template.startsWith("/")) throw new Error(`http template must start with "/": ${template}`);
  const vars: PathVar[] = [];
  let path = "";
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === "{") {
      const end = template.indexOf("}", i);
      if (end < 0) throw new Error(`unbalanced { in ${template}`);
      const body = template.slice(i + 1, end);
      const eq = body.indexOf("=");
      const fieldPath = eq < 0 ? body : body.slice(0, eq);
      const pattern = eq < 0 ? undefined : body.slice(eq + 1);
      vars.push(pattern && pattern !== "*" ? { fieldPath, pattern } : { fieldPath });
      path += `{${fieldPath}}`;
      i = end + 1;
    } else {
      if (c === "*" && (template[i - 1] === "/" || i === 0)) {
        throw new Error(`unnamed wildcard in ${template}: name it ({field=*}) so OpenAPI can describe it`);
      }
      path += c;
      i++;
    }
  }
  return { path, vars };
}

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

class Builder {
  readonly schemas = new Map<string, Schema>();
  private readonly pending: (DescMessage | DescEnum)[] = [];

  constructor(private readonly comments: Map<string, string>) {}

  describe(schema: Schema, key: string): Schema {
    const c = this.comments.get(key);
    return c ? { ...schema, description: c } : schema;
  }

  /** Schema of a message as a value: well-known types inline, others by $ref. */
  messageSchema(m: DescMessage): Schema {
    const wkt = wellKnown(m.typeName);
    if (wkt) return wkt;
    if (m.typeName === "google.protobuf.Any") return this.any();
    this.need(m);
    return ref(m.typeName);
  }

  enumSchema(e: DescEnum): Schema {
    if (e.typeName === "google.protobuf.NullValue") return { type: "null" };
    this.need(e);
    return ref(e.typeName);
  }

  private any(): Schema {
    if (!this.schemas.has("google.protobuf.Any")) {
      this.schemas.set("google.protobuf.Any", {
        type: "object",
        description:
          "A message of any type: \"@type\" names it (type.googleapis.com/<full name>), the other properties are its JSON fields. " +
          'Error details are e.g. google.rpc.BadRequest {"fieldViolations": [{"field": "quantity", "description": "..."}]}.',
        required: ["@type"],
        properties: { "@type": { type: "string", examples: ["type.googleapis.com/google.rpc.BadRequest"] } },
        additionalProperties: true,
      });
    }
    return ref("google.protobuf.Any");
  }

  private need(d: DescMessage | DescEnum) {
    if (!this.schemas.has(d.typeName)) {
      this.schemas.set(d.typeName, {}); // placeholder against cycles
      this.pending.push(d);
    }
  }

  /** Builds every schema referenced so far (and what they reference). */
  flush() {
    for (let d = this.pending.shift(); d; d = this.pending.shift()) {
      this.schemas.set(d.typeName, d.kind === "message" ? this.objectSchema(d) : this.enumObject(d));
    }
  }

  private enumObject(e: DescEnum): Schema {
    const lines = e.values
      .filter((v) => this.comments.has(`${e.typeName}.${v.name}`))
      .map((v) => `- ${v.name}: ${this.comments.get(`${e.typeName}.${v.name}`)!.replace(/\n/g, " ")}`);
    const base = this.comments.get(e.typeName);
    const description = [base, ...lines].filter(Boolean).join("\n");
    return {
      type: "string",
      enum: e.values.map((v) => v.name),
      ...(description ? { description } : {}),
    };
  }

  objectSchema(m: DescMessage, omit: ReadonlySet<string> = new Set()): Schema {
    const properties: Schema = {};
    for (const f of m.fields) {
      if (omit.has(f.name)) continue;
      properties[f.jsonName] = this.fieldSchema(f);
    }
    const oneofs = m.oneofs
      .filter((o) => !o.fields.every((f) => f.proto.proto3Optional))
      .map((o) => `At most one of ${o.fields.map((f) => f.jsonName).join(", ")} (oneof ${o.name}).`);
    const description = [this.comments.get(m.typeName), ...oneofs].filter(Boolean).join("\n");
    return {
      type: "object",
      ...(description ? { description } : {}),
      properties,
    };
  }

  fieldSchema(f: DescField): Schema {
    let s: Schema;
    switch (f.fieldKind) {
      case "scalar":
        s = scalarSchema(f.scalar);
        break;
      case "enum":
        s = this.enumSchema(f.enum);
        break;
      case "message":
        s = this.messageSchema(f.message);
        break;
      case "list":
        s = {
          type: "array",
          items:
            f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? this.enumSchema(f.enum) : this.messageSchema(f.message),
        };
        break;
      case "map":
        s = {
          type: "object",
          propertyNames: mapKeySchema(f.mapKey),
          additionalProperties:
            f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? this.enumSchema(f.enum) : this.messageSchema(f.message),
        };
        break;
    }
    if (f.deprecated) s = { ...s, deprecated: true };
    return this.describe(s, `${f.parent.typeName}.${f.name}`);
  }
}

function scalarSchema(t: ScalarType): Schema {
  switch (t) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    // proto3 JSON writes 64-bit integers as strings (readers also accept numbers).
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
  }
}

function mapKeySchema(t: ScalarType): Schema {
  const s = scalarSchema(t);
  if (s.type === "integer") return { type: "string", pattern: t === ScalarType.UINT32 || t === ScalarType.FIXED32 ? "^[0-9]+$" : "^-?[0-9]+$" };
  if (s.type === "boolean") return { type: "string", enum: ["true", "false"] };
  return { type: "string" };
}

/** Well-known types with a special JSON form, inlined where used. */
function wellKnown(typeName: string): Schema | undefined {
  const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, "null"] });
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", description: 'Seconds with an "s" suffix, e.g. "1.5s".' };
    case "google.protobuf.FieldMask":
      return {
        type: "string",
        description: 'Comma-separated field paths in lowerCamelCase, e.g. "name,role".',
      };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array", items: {} };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
      return nullable({ type: "number" });
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
      return nullable({ type: "integer" });
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
      return nullable({ type: "string", format: "int64" });
    case "google.protobuf.BoolValue":
      return nullable({ type: "boolean" });
    case "google.protobuf.StringValue":
      return nullable({ type: "string" });
    case "google.protobuf.BytesValue":
      return nullable({ type: "string", contentEncoding: "base64" });
  }
  return undefined;
}

const accessName = (a: Access) => `ACCESS_${Access[a]}`;

/** Builds the OpenAPI document from a serialized FileDescriptorSet (with source info). */
export function openApiFromDescriptorSet(bytes: Uint8Array, opts: OpenApiOptions = {}): Schema {
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  const registry = createFileRegistry(set);
  const files = [...registry.files].sort((a, b) => a.name.localeCompare(b.name));
  const comments = commentsOf(files);
  const b = new Builder(comments);

  const status = registry.getMessage("google.rpc.Status");
  if (!status) throw new Error("google/rpc/status.proto must be in the descriptor set (the error schema)");
  b.messageSchema(status);

  const services: DescService[] = files
    .filter((f) => f.proto.package.startsWith("acme."))
    .flatMap((f) => f.services)
    .filter((s) => !getOption(s, internal));

  const paths = new Map<string, Schema>();
  const operationIds = new Set<string>();
  const tags: Json[] = [];
  for (const service of services) {
    tags.push(b.describe({ name: service.name }, service.typeName));
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const primary = getOption(method, http);
      [primary, ...primary.additionalBindings].forEach((rule, i) => {
        const { verb, path, op } = operation(b, service, method, rule, i);
        if (operationIds.has(op.operationId as string)) throw new Error(`duplicate operationId ${op.operationId}`);
        operationIds.add(op.operationId as string);
        const item = paths.get(path) ?? {};
        if (item[verb]) throw new Error(`two RPCs bind ${verb.toUpperCase()} ${path}`);
        item[verb] = op;
        paths.set(path, item);
      });
    }
  }
  b.flush();
  b.schemas.set("google.rpc.Status", {
    ...b.schemas.get("google.rpc.Status")!,
    description:
      "Every error: code is the gRPC status code (google.rpc.Code: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, " +
      "16 UNAUTHENTICATED, ...), message is for developers, details carry typed error details such as google.rpc.BadRequest.",
  });

  // Errors from a service are google.rpc.Status as JSON. The edge itself
  // (Envoy, and the embedded edge that mirrors it) refuses some requests before
  // any service runs, with Envoy's local replies: a short text/plain body.
  const statusJson = { schema: ref("google.rpc.Status") };
  const local = (text: string) => ({ schema: { type: "string", description: text } });
  const errorResponse = (description: string, edge?: string, headers?: Schema): Schema => ({
    description,
    ...(headers ? { headers } : {}),
    content: { "application/json": statusJson, ...(edge ? { "text/plain": local(edge) } : {}) },
  });
  const header = (description: string, schema: Schema = { type: "string" }): Schema => ({ description, schema });
  const rateHeaders = Object.fromEntries(RATE_HEADERS.map((h) => [h, { $ref: `#/components/headers/${h}` }]));
  const schemas: Schema = {};
  for (const name of [...b.schemas.keys()].sort()) schemas[name] = b.schemas.get(name)!;
  return {
    openapi: "3.1.0",
    info: {
      title: opts.title ?? "acme API",
      version: opts.version ?? "v1",
      description:
        "REST/JSON surface of the acme services (auth, user, order), transcoded to gRPC by the edge. " +
        "Generated from the Protobuf contract (proto/) by scripts/openapi.ts: do not edit. " +
        "Field names are lowerCamelCase (proto3 JSON mapping); 64-bit integers are strings; enums are strings. " +
        "The same RPCs are served over gRPC, gRPC-Web and Connect on the same port (docs/clients.md).",
    },
    tags,
    paths: Object.fromEntries(paths),
    components: {
      schemas,
      responses: {
        BadRequest: errorResponse(
          "INVALID_ARGUMENT (3) or FAILED_PRECONDITION (9) from the service, with google.rpc.BadRequest details naming the bad fields; " +
            "or a request the edge cannot transcode (malformed JSON, unknown query parameter).",
          "The edge's reason, e.g. an unknown query parameter.",
        ),
        Unauthenticated: errorResponse(
          "Missing, malformed, expired or revoked bearer token.",
          'The JWT check\'s reason: "Jwt is missing", "Jwt is expired", "Jwt verification fails", ...',
          { "www-authenticate": header('Bearer realm="<url>"[, error="invalid_token"]') },
        ),
        PermissionDenied: errorResponse(
          "PERMISSION_DENIED (7): the caller lacks a required role, or the token's audience is not allowed.",
          '"Audiences in Jwt are not allowed".',
        ),
        NotFound: errorResponse("NOT_FOUND (5): no such resource, or not visible to the caller."),
        TooManyRequests: errorResponse(
          "Rate limited by the edge (empty text/plain body), or RESOURCE_EXHAUSTED (8) from the service. Retry after retry-after seconds.",
          "Empty.",
          { ...rateHeaders, "retry-after": header("Seconds until the refusing window resets.", { type: "integer" }) },
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
    },
  };
}

function operation(b: Builder, service: DescService, method: DescMethod, rule: HttpRule, binding: number): { verb: string; path: string; op: Schema } {
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
  const { path, vars } = parseTemplate(template);
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
  const headers = Object.fromEntries(RATE_HEADERS.map((h) => [h, { $ref: `#/components/headers/${h}` }]));
  const responses: Schema = { "200": { description: "OK", headers, content } };
  if (parameters.length || requestBody) responses["400"] = { $ref: "#/components/responses/BadRequest" };
  if (!isPublic) responses["401"] = { $ref: "#/components/responses/Unauthenticated" };
  if (!isPublic || p.roles.length) responses["403"] = { $ref: "#/components/responses/PermissionDenied" };
  if (vars.length) responses["404"] = { $ref: "#/components/responses/NotFound" };
  responses["429"] = { $ref: "#/components/responses/TooManyRequests" };
  responses.default = { $ref: "#/components/responses/Error" };

  const comment = b.describe({}, where).description as string | undefined;
  const notes = [
    p.roles.length ? `Requires role: ${p.roles.join(" or ")}.` : "",
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
    "x-acme-policy": { access: accessName(access), roles: [...p.roles], rateLimit: p.rateLimit || "default" },
  };
  if (method.deprecated) op.deprecated = true;
  return { verb, path, op };
}

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
