// REST <-> protobuf per google.api.http, with Envoy's transcoder semantics:
// - the JSON body goes to the whole request (body: "*") or to one field
//   (body: "user"); rules without a body ignore the request body;
// - path variables and query parameters bind fields by path ("user.id",
//   "pageSize" or "page_size"); repeated fields take every value, enums
//   their name (or number), 64-bit integers a decimal string, well-known
//   types their JSON string form (updateMask=name,role); an unknown query
//   parameter is refused (reject_unknown_query_parameters);
// - the path wins over the query; a field the body sets to another value than a
//   binding (path or query) is refused with 400, as Envoy's
//   reject_binding_body_field_collisions;
// - the response is canonical proto3 JSON (lowerCamelCase, defaults omitted),
//   or its response_body field, or for google.api.HttpBody the raw bytes with
//   their content type.
import { create, mergeFromJson, ScalarType, toJson, type DescField, type DescMessage, type JsonValue, type Message, type Registry } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { Binding } from "./routes.js";
import type { QueryParam } from "./url.js";

/** A request the transcoder cannot turn into a message: 400 with this message. */
export class TranscodeError extends Error {}

const HTTP_BODY = "google.api.HttpBody";

/** Resolve a query parameter name ("a.b", JSON or proto names) to request fields. */
export function resolveQueryField(input: DescMessage, name: string): DescField[] {
  const out: DescField[] = [];
  let m: DescMessage | undefined = input;
  for (const segment of name.split(".")) {
    const f: DescField | undefined = m?.fields.find((x) => x.name === segment || x.jsonName === segment);
    if (!m || !f) throw new TranscodeError(`Could not find field "${segment}" in the type "${(m ?? input).typeName}".`);
    out.push(f);
    m = f.fieldKind === "message" ? f.message : undefined;
  }
  return out;
}

function scalarJson(scalar: ScalarType | undefined, raw: string): JsonValue {
  if (scalar === ScalarType.BOOL) return raw === "true" ? true : raw === "false" ? false : raw;
  return raw;
}

/** A bound string as the JSON value of a field (repeated: one element). */
function elementJson(field: DescField, raw: string): JsonValue {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
  if (kind === "enum") return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  if (kind === "scalar") return scalarJson(field.scalar, raw);
  if (kind === "message") {
    const msg = field.message!;
    // Wrappers (google.protobuf.BoolValue...) take their inner value's JSON.
    if (msg.typeName.startsWith("google.protobuf.") && msg.typeName.endsWith("Value") && msg.fields.length === 1) {
      return scalarJson(msg.fields[0].scalar, raw);
    }
  }
  return raw;
}

/** The message holding the last field of a path, creating the messages on the way. */
function parentOf(desc: DescMessage, msg: Message, fields: readonly DescField[]): { desc: DescMessage; msg: Message } {
  for (const f of fields.slice(0, -1)) {
    const r = reflect(desc, msg);
    if (!r.isSet(f)) r.set(f, reflect(f.message!, create(f.message!)));
    msg = (r.get(f) as ReflectMessage).message;
    desc = f.message!;
  }
  return { desc, msg };
}

function setField(root: DescMessage, msg: Message, fields: readonly DescField[], json: JsonValue, registry: Registry, what: string) {
  const leaf = fields[fields.length - 1];
  const parent = parentOf(root, msg, fields);
  try {
    mergeFromJson(parent.desc, parent.msg, { [leaf.jsonName]: json }, { registry });
  } catch (err) {
    throw new TranscodeError(`${what}: ${(err as Error).message}`);
  }
}

/** Default nesting limit of a JSON body (MAX_JSON_DEPTH). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * The deepest nesting of objects and arrays in JSON text, or max + 1 as soon as
 * it goes deeper (strings skipped): checked before parsing, so a deep body costs
 * one scan, never a deep recursion in the parser or the message builder.
 */
export function jsonDepth(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > deepest && (deepest = depth) > max) return deepest;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return deepest;
}

export function parseJsonBody(bytes: Uint8Array, maxDepth = DEFAULT_MAX_JSON_DEPTH): JsonValue {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new TranscodeError("Invalid JSON payload received. The body is not valid UTF-8.");
  }
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new TranscodeError(`Invalid JSON payload received. The body nests deeper than ${maxDepth} levels.`);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new TranscodeError(`Invalid JSON payload received. ${(err as Error).message}`);
  }
}

/** What the transcoder needs to know about a route's request. */
export interface RequestShape {
  readonly input: DescMessage;
  /** "" (no body), "*" or a field path. */
  readonly body: string;
  /** The fields of a body field path. */
  readonly bodyField?: readonly DescField[];
}

/** What the transcoder needs to know about a route's response. */
export interface ResponseShape {
  readonly output: DescMessage;
  readonly responseBody?: readonly DescField[];
}

/**
 * The value the JSON body gives the field a binding names ("user.id", "page_size"), if
 * any: the binding's path below the body field, looked up by JSON or proto name.
 */
function bodyValue(route: RequestShape, json: JsonValue, binding: string): JsonValue | undefined {
  let names = binding.split(".");
  if (route.body !== "*") {
    const bodyPath = route.body.split(".");
    const prefix = names.slice(0, bodyPath.length);
    const fieldNames = route.bodyField!.map((f) => f.name);
    const jsonNames = route.bodyField!.map((f) => f.jsonName);
    const under = prefix.every((n, i) => n === fieldNames[i] || n === jsonNames[i]);
    if (!under || names.length <= bodyPath.length) return undefined;
    names = names.slice(bodyPath.length);
  }
  let desc: DescMessage | undefined = route.body === "*" ? route.input : route.bodyField!.at(-1)!.message;
  let node: JsonValue = json;
  for (const n of names) {
    if (!desc || node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    const f: DescField | undefined = desc.fields.find((x) => x.name === n || x.jsonName === n);
    if (!f) return undefined;
    const obj = node as Record<string, JsonValue>;
    const key = f.jsonName in obj ? f.jsonName : f.name in obj ? f.name : undefined;
    if (key === undefined) return undefined;
    node = obj[key];
    desc = f.fieldKind === "message" ? f.message : undefined;
  }
  return node === null || typeof node === "object" ? undefined : node;
}

/** Build the request message of a route from its path bindings, query and body. */
export function buildRequest(
  route: RequestShape,
  pathBindings: readonly Binding[],
  query: readonly QueryParam[],
  body: Uint8Array | undefined,
  registry: Registry,
  limits: { maxJsonDepth?: number } = {},
): Message {
  const { input } = route;
  const msg = create(input);

  // No body on a rule with a message body field: Envoy still sets that field (empty).
  const json = route.body && body && body.length > 0 ? parseJsonBody(body, limits.maxJsonDepth) : route.bodyField?.at(-1)?.fieldKind === "message" ? {} : undefined;
  if (json !== undefined) {
    const bindings = [...pathBindings.map((x) => ({ name: x.fieldPath.join("."), value: x.value })), ...query];
    for (const b of bindings) {
      const inBody = bodyValue(route, json, b.name);
      if (inBody !== undefined && String(inBody) !== b.value) {
        const field = b.name.split(".").at(-1);
        throw new TranscodeError(`The binding value ${JSON.stringify(b.value)} of the field ${field} is conflicting with the value ${JSON.stringify(inBody)} in the body.`);
      }
    }
  }

  // Group by field: repeated fields collect values in order, others keep the last.
  const groups = new Map<string, { fields: DescField[]; values: string[]; what: string }>();
  const bind = (fields: DescField[], value: string, what: string) => {
    const key = fields.map((f) => f.number).join(".");
    const g = groups.get(key);
    const repeated = fields[fields.length - 1].fieldKind === "list";
    if (g && repeated) g.values.push(value);
    else groups.set(key, { fields, values: [value], what });
  };
  for (const q of query) {
    const fields = resolveQueryField(input, q.name);
    const leaf = fields[fields.length - 1];
    if (leaf.fieldKind === "map" || (leaf.fieldKind === "list" && leaf.listKind === "message")) {
      throw new TranscodeError(`query parameter "${q.name}" cannot set ${leaf.fieldKind === "map" ? "a map" : "a repeated message"} field`);
    }
    bind(fields, q.value, `invalid value for query parameter "${q.name}"`);
  }
  for (const b of pathBindings) {
    const fields = resolveQueryField(input, b.fieldPath.join("."));
    groups.delete(fields.map((f) => f.number).join(".")); // the path wins over the query
    bind(fields, b.value, `invalid value for path parameter "${b.fieldPath.join(".")}"`);
  }
  for (const { fields, values, what } of groups.values()) {
    const leaf = fields[fields.length - 1];
    const value = leaf.fieldKind === "list" ? values.map((v) => elementJson(leaf, v)) : elementJson(leaf, values[values.length - 1]);
    setField(input, msg, fields, value, registry, what);
  }

  // The body (no field of it is also bound: see above).
  if (json !== undefined) {
    if (route.body === "*") {
      try {
        mergeFromJson(input, msg, json, { registry });
      } catch (err) {
        throw new TranscodeError(`Invalid JSON payload received. ${(err as Error).message}`);
      }
    } else {
      setField(input, msg, route.bodyField!, json, registry, "Invalid JSON payload received");
    }
  }
  return msg;
}

export interface RenderedBody {
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

/** The HTTP body of a successful response. */
export function renderResponse(route: ResponseShape, message: Message, registry: Registry): RenderedBody {
  let desc: DescMessage = route.output;
  let msg: Message = message;
  for (const f of route.responseBody ?? []) {
    if (f.fieldKind !== "message") {
      // A scalar, enum, list or map field: its JSON value alone.
      const full = toJson(desc, msg, { registry, alwaysEmitImplicit: true }) as Record<string, JsonValue>;
      return { contentType: "application/json", body: JSON.stringify(full[f.jsonName] ?? null) };
    }
    const r = reflect(desc, msg);
    msg = r.isSet(f) ? (r.get(f) as ReflectMessage).message : create(f.message);
    desc = f.message;
  }
  if (desc.typeName === HTTP_BODY) {
    const hb = msg as unknown as { contentType: string; data: Uint8Array };
    return { contentType: hb.contentType || "application/octet-stream", body: hb.data };
  }
  return { contentType: "application/json", body: JSON.stringify(toJson(desc, msg, { registry })) };
}
