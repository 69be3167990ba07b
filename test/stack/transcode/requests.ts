// The requests of test/stack/transcode.test.ts, generated from the descriptors:
// routes, fixtures per edge, samples per field, the variants of each route.
import { randomUUID } from "node:crypto";
import { ScalarType, type DescEnum, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { policies } from "../../../app/contract.js";
import { compileRoutes, type Route } from "../../../edge/routes.js";
import { parseTemplate } from "../../../platform/http-template.js";
import { Access } from "../../../platform/policy.js";
import { PASSWORD, type Answer, type Target, type User } from "../../edge/conformance/target.js";
// ---------------------------------------------------------------------------
// Routes and the requests generated for them

/** GET first, DELETE last (each route has its own fixtures; this only keeps the run readable). */
export const METHOD_RANK: Record<string, number> = { GET: 0, POST: 1, PUT: 1, PATCH: 1, DELETE: 2 };
export const COMPILED = compileRoutes(policies.all());
export const ROUTES: readonly Route[] = [...COMPILED.routes].sort((a, b) => (METHOD_RANK[a.httpMethod] ?? 1) - (METHOD_RANK[b.httpMethod] ?? 1));
export const routeKey = (r: Route) => `${r.httpMethod} ${r.template}`;

export type CallerName = "anonymous" | "other" | "owner" | "admin";
export type Mode = "existing" | "fresh";

/** A user of one route's fixtures, with an order, a session and the mails about them. */
export interface Party {
  tag: string;
  id: string;
  email: string;
  access: string;
  refresh: string;
  orderId: string;
  requestId: string;
  sessionId: string;
  /** The delivery of the order's confirmation mail (sent). */
  notificationId: string;
}

/** The resources fixtures hold, by message name: a request's `id` / `<name>_id` of that type gets this. */
export const FIXTURE_RESOURCES: Record<string, "id" | "orderId" | "sessionId" | "notificationId"> = {
  User: "id",
  Order: "orderId",
  Session: "sessionId",
  // notification.proto: a request's `id` is a delivery's (Notification and Delivery share their ids).
  Notification: "notificationId",
  Delivery: "notificationId",
};

/** A UUID no edge knows (the same on both). */
export const MISSING_ID = randomUUID();
export const NEW_PASSWORD = "transcode-new-password-2";

export interface EdgeState {
  readonly name: "embedded" | "envoy";
  readonly t: Target;
  /** Per-edge suffix of fixture emails (normalised to <sfx>). */
  readonly sfx: string;
  admin?: User;
  /** The catalogue product the fixtures' orders name (the same sku on both edges). */
  productId?: string;
  owner?: Party;
  other?: Party;
  routeIndex: number;
  /** The previous answer on this edge (paging). */
  last?: Answer;
}

export interface HttpRequest {
  method: string;
  path: string;
  token?: string;
  /** JSON value (sent as JSON) or raw text. */
  body?: { json: unknown } | { raw: string };
}

export interface Case {
  route: Route;
  variant: string;
  caller: CallerName;
  /** Deliberately invalid (the request cannot be transcoded, or names something unknown). */
  invalid?: "json" | "query" | "method";
  build(e: EdgeState): HttpRequest;
}

export type LeafPath = readonly DescField[];

export const WKT_SCALARISH = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.Empty",
  "google.protobuf.Any",
]);
export const isWrapper = (m: DescMessage) => m.typeName.startsWith("google.protobuf.") && m.typeName.endsWith("Value") && m.fields.length === 1 && m.fields[0].name === "value";
export const isLeafMessage = (m: DescMessage) => WKT_SCALARISH.has(m.typeName) || isWrapper(m);

/** Every leaf field of a message (singular sub-messages expanded, depth-limited), as field paths. */
export function leavesOf(m: DescMessage, prefix: LeafPath = [], depth = 0): LeafPath[] {
  const out: LeafPath[] = [];
  for (const f of m.fields) {
    const path = [...prefix, f];
    if (f.fieldKind === "message" && !isLeafMessage(f.message) && depth < 3) out.push(...leavesOf(f.message, path, depth + 1));
    else out.push(path);
  }
  return out;
}

export const samePath = (a: LeafPath, b: readonly DescField[]) => a.length === b.length && a.every((f, i) => f === b[i]);
export const startsWith = (a: LeafPath, prefix: readonly DescField[]) => prefix.length <= a.length && prefix.every((f, i) => f === a[i]);
export const jsonPath = (p: LeafPath) => p.map((f) => f.jsonName).join(".");

export function resolve(m: DescMessage, names: readonly string[]): DescField[] {
  const out: DescField[] = [];
  let cur: DescMessage | undefined = m;
  for (const n of names) {
    const f: DescField | undefined = cur?.fields.find((x) => x.name === n || x.jsonName === n);
    if (!f) throw new Error(`no field ${names.join(".")} in ${m.typeName}`);
    out.push(f);
    cur = f.fieldKind === "message" ? f.message : undefined;
  }
  return out;
}

/** How a route's request message is spread over path, body and query. */
export interface Shape {
  pathVars: { name: string; fields: DescField[] }[];
  /** The leaves a client may set (not bound by the path). */
  leaves: LeafPath[];
  /** The fields receiving the body ([] for "*", undefined without a body). */
  bodyPrefix?: DescField[];
}

export function shapeOf(r: Route): Shape {
  const pathVars = parseTemplate(r.template).variables.map((v) => ({ name: v.fieldPath.join("."), fields: resolve(r.input, v.fieldPath) }));
  const leaves = leavesOf(r.input).filter((l) => !pathVars.some((v) => samePath(l, v.fields)));
  const bodyPrefix = r.body === "*" ? [] : r.body ? resolve(r.input, r.body.split(".")) : undefined;
  return { pathVars, leaves, bodyPrefix };
}

export const inBody = (s: Shape, l: LeafPath) => s.bodyPrefix !== undefined && startsWith(l, s.bodyPrefix);

/** The resource a string field names: `id` of a nested message is that message's; `id` of a request is its file's resource; `user_id` a User. */
export function resourceOf(r: Route, path: LeafPath): string | undefined {
  const leaf = path[path.length - 1];
  const parent = path.length > 1 ? path[path.length - 2].message : r.input;
  if (leaf.name === "id") {
    if (parent && parent !== r.input) return parent.name;
    // A request's own `id`: the file's one resource-like message (one with an id, not a request or response).
    const candidates = r.input.file.messages.filter((m) => !/(Request|Response)$/.test(m.name) && m.fields.some((f) => f.name === "id"));
    return candidates[0]?.name;
  }
  const m = /^(.+)_id$/.exec(leaf.name);
  if (m) return m[1].replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
  return undefined;
}

export function fixtureId(e: EdgeState, resource: string | undefined, who: "owner" | "other"): string | undefined {
  const key = resource ? FIXTURE_RESOURCES[resource] : undefined;
  if (!key) return undefined;
  return e[who]![key];
}

export interface Gen {
  r: Route;
  e: EdgeState;
  mode: Mode;
}

export function stringSample(g: Gen, path: LeafPath): string | undefined {
  const leaf = path[path.length - 1];
  const name = leaf.name;
  const owner = g.e.owner!;
  if (name === "email" || name.endsWith("_email")) return g.mode === "existing" ? owner.email : `fresh${g.e.routeIndex}-${g.e.sfx}@example.com`;
  if (name.includes("password")) return name.startsWith("new") ? NEW_PASSWORD : PASSWORD;
  if (name === "page_token") return g.mode === "existing" ? undefined : "bm90LWEtcGFnZS10b2tlbg";
  if (name.endsWith("_token")) {
    if (g.mode === "fresh") return `not-a-${name.replace(/_/g, "-")}`;
    return name.includes("refresh") ? owner.refresh : owner.access;
  }
  if (name === "request_id") return g.mode === "existing" ? owner.requestId : `fresh-request-${g.e.routeIndex}`;
  if (name === "id" || name.endsWith("_id")) {
    const resource = resourceOf(g.r, path);
    return fixtureId(g.e, resource, "owner") ?? (name === "id" ? MISSING_ID : `sample-${name.slice(0, -3).replace(/_/g, "-")}`);
  }
  if (name === "role") return "admin";
  if (name === "name") return "Sample Name";
  return `sample ${name.replace(/_/g, " ")}`;
}

export function scalarSample(g: Gen, path: LeafPath, type: ScalarType): JsonValue | undefined {
  const name = path[path.length - 1].name;
  switch (type) {
    case ScalarType.STRING:
      return stringSample(g, path);
    case ScalarType.BOOL:
      return true;
    case ScalarType.BYTES:
      return "c2FtcGxl";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 1.5;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return /cents|price|amount/.test(name) ? "1999" : "1";
    default:
      return 2;
  }
}

export const firstNonZero = (en: DescEnum) => (en.values.find((v) => v.number !== 0) ?? en.values[0]).name;

export function messageSample(g: Gen, path: LeafPath, m: DescMessage): JsonValue | undefined {
  switch (m.typeName) {
    case "google.protobuf.Timestamp":
      return "2024-01-02T03:04:05Z";
    case "google.protobuf.Duration":
      return "1.500s";
    case "google.protobuf.Struct":
      return { sample: "value" };
    case "google.protobuf.Value":
      return "value";
    case "google.protobuf.ListValue":
      return ["value"];
    case "google.protobuf.Empty":
      return {};
    case "google.protobuf.Any":
      return undefined;
  }
  if (isWrapper(m)) {
    const inner = m.fields[0];
    return inner.fieldKind === "scalar" ? scalarSample(g, path, inner.scalar) : undefined;
  }
  // A repeated or map entry message: one element with every leaf.
  return buildObject(g, leavesOf(m), []);
}

/** The sample JSON value of a leaf (FieldMasks are derived from the other leaves, see buildObject). */
export function leafSample(g: Gen, path: LeafPath): JsonValue | undefined {
  const f = path[path.length - 1];
  const element = (): JsonValue | undefined => {
    if (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar") || (f.fieldKind === "map" && f.mapKind === "scalar")) return scalarSample(g, path, f.scalar!);
    if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum") || (f.fieldKind === "map" && f.mapKind === "enum")) return firstNonZero(f.enum!);
    return messageSample(g, path, f.message!);
  };
  const v = element();
  if (v === undefined) return undefined;
  if (f.fieldKind === "list") return [v];
  if (f.fieldKind === "map") return { [f.mapKey === ScalarType.STRING ? "key" : f.mapKey === ScalarType.BOOL ? "true" : "1"]: v };
  return v;
}

export const isFieldMask = (l: LeafPath) => {
  const f = l[l.length - 1];
  return f.fieldKind === "message" && f.message.typeName === "google.protobuf.FieldMask";
};

/**
 * A JSON object for the chosen leaves (relative to `base`, a message field path).
 * A FieldMask names the chosen leaves of its sibling message fields (update_mask
 * next to user: "name"); it is left out when it would be empty.
 */
export function buildObject(g: Gen, chosen: readonly LeafPath[], base: readonly DescField[], override?: { leaf: LeafPath; value: JsonValue }): Record<string, JsonValue> {
  const obj: Record<string, JsonValue> = {};
  const put = (l: LeafPath, v: JsonValue) => {
    let o = obj;
    const rel = l.slice(base.length);
    for (const f of rel.slice(0, -1)) o = (o[f.jsonName] ??= {}) as Record<string, JsonValue>;
    o[rel[rel.length - 1].jsonName] = v;
  };
  for (const l of chosen) {
    if (override && samePath(l, override.leaf)) {
      put(l, override.value);
      continue;
    }
    if (isFieldMask(l)) {
      const parent = l.slice(0, -1);
      const masked = chosen
        .filter((o) => !isFieldMask(o) && startsWith(o, parent) && o.length > parent.length + 1 && o[parent.length].fieldKind === "message")
        .map((o) => jsonPath(o.slice(parent.length + 1)));
      if (masked.length) put(l, masked.join(","));
      continue;
    }
    const v = leafSample(g, l);
    if (v !== undefined) put(l, v);
  }
  return obj;
}

/** Query parameters for leaves outside path and body. */
export function queryOf(g: Gen, leaves: readonly LeafPath[], override?: { leaf: LeafPath; value: JsonValue }): string[] {
  const obj = buildObject(g, leaves, [], override);
  const out: string[] = [];
  const walk = (v: JsonValue, name: string) => {
    if (Array.isArray(v)) for (const x of v) walk(x, name);
    else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, name ? `${name}.${k}` : k);
    else out.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(v))}`);
  };
  walk(obj, "");
  return out;
}

export type PathVariant = "own" | "other's" | "missing" | "malformed";

export interface RequestSpec {
  /** The leaves to fill (path-bound ones never). */
  chosen: readonly LeafPath[];
  mode: Mode;
  pathVariant?: PathVariant;
  /** Replace one leaf's value (wrong JSON types). */
  override?: { leaf: LeafPath; value: JsonValue };
  /** Replace the whole body. */
  rawBody?: string;
  /** Another HTTP method than the route's. */
  method?: string;
  noBody?: boolean;
  extraQuery?: string[];
  /** Also put this path-bound field in the body, naming the other user's resource. */
  bodyPathField?: readonly DescField[];
  /** Extra query from this edge's previous answer. */
  fromLast?: (last: Answer | undefined) => string[];
}

export function buildRequest(r: Route, s: Shape, e: EdgeState, caller: CallerName, spec: RequestSpec): HttpRequest {
  const g: Gen = { r, e, mode: spec.mode };
  let path = r.template;
  for (const v of s.pathVars) {
    const pv = spec.pathVariant ?? "own";
    const resource = resourceOf(r, v.fields);
    let value: string;
    if (pv === "missing") value = MISSING_ID;
    else if (pv === "malformed") value = "not-an-id";
    else value = fixtureId(e, resource, pv === "own" ? "owner" : "other") ?? String(leafSample(g, v.fields) ?? MISSING_ID);
    path = path.replace(new RegExp(`\\{${v.name.replace(/\./g, "\\.")}(=[^}]*)?\\}`), encodeURIComponent(value));
  }
  const queryLeaves = spec.chosen.filter((l) => !inBody(s, l));
  const bodyLeaves = spec.chosen.filter((l) => inBody(s, l));
  const override = spec.override;
  const query = [...queryOf(g, queryLeaves, override), ...(spec.extraQuery ?? []), ...(spec.fromLast?.(e.last) ?? [])];
  if (query.length) path += `?${query.join("&")}`;
  let body: HttpRequest["body"];
  if (s.bodyPrefix !== undefined && !spec.noBody) {
    body = spec.rawBody !== undefined ? { raw: spec.rawBody } : { json: buildObject(g, bodyLeaves, s.bodyPrefix, override) };
    if (spec.bodyPathField && "json" in body) {
      const rel = spec.bodyPathField.slice(s.bodyPrefix.length);
      let o = body.json as Record<string, unknown>;
      for (const f of rel.slice(0, -1)) o = (o[f.jsonName] ??= {}) as Record<string, unknown>;
      o[rel[rel.length - 1].jsonName] = fixtureId(e, resourceOf(r, spec.bodyPathField), "other") ?? MISSING_ID;
    }
  }
  const token = caller === "anonymous" ? undefined : caller === "admin" ? e.admin!.access : e[caller]!.access;
  if (spec.method === "GET" || spec.method === "HEAD") body = undefined;
  return { method: spec.method ?? r.httpMethod, path, token, body };
}

/** A value of the wrong JSON type for a leaf. */
export function wrongType(l: LeafPath): JsonValue {
  const f = l[l.length - 1];
  if (f.fieldKind === "list") return "not-a-list";
  if (f.fieldKind === "map") return ["not-a-map"];
  if (f.fieldKind === "enum") return { not: "an enum" };
  // An object with unknown keys would be a (dropped) unknown field to Envoy: a bool is wrong for both parsers.
  if (f.fieldKind === "message") return f.message.typeName === "google.protobuf.Timestamp" || isWrapper(f.message) ? (f.message.typeName === "google.protobuf.BoolValue" ? "not-a-bool" : true) : "not-a-message";
  if (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES) return 12345;
  if (f.scalar === ScalarType.BOOL) return "not-a-bool";
  return "not-a-number";
}

/** An ill-typed query value for a leaf, or undefined when any text is valid (strings). */
export function wrongQueryValue(l: LeafPath): string | undefined {
  const f = l[l.length - 1];
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) return "NO_SUCH_VALUE";
  if (f.fieldKind === "message") return f.message.typeName === "google.protobuf.Timestamp" ? "yesterday" : undefined;
  if (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES) return undefined;
  if (f.scalar === ScalarType.BOOL) return "maybe";
  return "not-a-number";
}

/** The requests of one route, in the order they run on both edges. */
export function casesFor(r: Route): Case[] {
  const s = shapeOf(r);
  const cases: Case[] = [];
  const isPublic = r.policy.access === Access.PUBLIC;
  const main: CallerName = isPublic ? "anonymous" : r.policy.roles.length ? "admin" : "owner";
  const callers: CallerName[] = isPublic ? ["anonymous", "owner"] : ["anonymous", "other", "owner", "admin"];
  const add = (variant: string, caller: CallerName, spec: RequestSpec, invalid?: Case["invalid"]) =>
    cases.push({ route: r, variant, caller, invalid, build: (e) => buildRequest(r, s, e, caller, spec) });
  const settable = s.leaves.filter((l) => !isFieldMask(l));
  const hasBody = s.bodyPrefix !== undefined;
  const invalidCallers: CallerName[] = main === "anonymous" ? ["anonymous"] : ["anonymous", main];

  // 1. Requests that cannot be transcoded or name unknown things (no side effects).
  const concrete = r.template.replace(/\{[^}]*\}/g, "x1");
  const allowed = COMPILED.table.allowedMethods(concrete);
  const otherMethod = ["PUT", "PATCH", "POST", "DELETE", "GET"].find((m) => !allowed.includes(m));
  for (const caller of invalidCallers) {
    if (otherMethod) add(`${otherMethod} instead of ${r.httpMethod}`, caller, { chosen: [], mode: "existing", method: otherMethod }, "method");
    add("unknown query parameter", caller, { chosen: [], mode: "existing", extraQuery: ["noSuchParameter=1"] }, "query");
    if (hasBody) {
      add("malformed JSON body", caller, { chosen: [], mode: "existing", rawBody: '{"' }, "json");
      // Not an unknown JSON field: Envoy's transcoder drops it and the embedded edge refuses it,
      // a documented difference (docs/edges.md) pinned by test/edge/conformance/routes.test.ts.
      add("JSON array as the body", caller, { chosen: [], mode: "existing", rawBody: "[1]" }, "json");
    }
  }
  for (const l of settable) {
    if (inBody(s, l)) add(`wrong JSON type for ${jsonPath(l)}`, main, { chosen: [l], mode: "existing", override: { leaf: l, value: wrongType(l) } }, "json");
    else {
      const bad = wrongQueryValue(l);
      if (bad !== undefined) add(`ill-typed query ${jsonPath(l)}=${bad}`, main, { chosen: [], mode: "existing", extraQuery: [`${encodeURIComponent(jsonPath(l))}=${bad}`] }, "query");
    }
  }

  // 2. Path variables naming someone else's resource, nothing, or nothing parseable.
  if (s.pathVars.length) {
    for (const pv of ["other's", "missing", "malformed"] as const) add(`path: ${pv} ${s.pathVars.map((v) => v.name).join(", ")}`, main, { chosen: [], mode: "existing", pathVariant: pv });
  }
  if (hasBody) add("no body at all", main, { chosen: [], mode: "existing", noBody: true });
  // The body naming the field a path variable binds, with another value (which one wins).
  for (const v of s.pathVars) {
    if (!inBody(s, v.fields)) continue;
    add(`body repeats ${v.name} with another value`, main, { chosen: [], mode: "existing", bodyPathField: v.fields });
  }

  // 3. One field at a time (the FieldMask, if any, naming it).
  const masks = s.leaves.filter(isFieldMask);
  if (settable.length > 1) {
    for (const l of settable) {
      const chosen = [l, ...masks];
      add(`only ${jsonPath(l)}`, main, { chosen, mode: "existing" });
    }
  }

  // 4. Paging: page 1 of size 1, then the page its next_page_token names.
  const pageSize = settable.find((l) => l.length === 1 && l[0].name === "page_size");
  const pageToken = settable.find((l) => l.length === 1 && l[0].name === "page_token");
  const nextToken = r.output.fields.find((f) => f.name === "next_page_token");
  if (pageSize && pageToken && nextToken) {
    add("page 1 (size 1)", main, { chosen: [], mode: "existing", extraQuery: [`${pageSize[0].jsonName}=1`] });
    add("page 2 (next page token)", main, {
      chosen: [],
      mode: "existing",
      extraQuery: [`${pageSize[0].jsonName}=1`],
      fromLast: (last) => {
        const tok = last?.json?.[nextToken.jsonName];
        return typeof tok === "string" && tok ? [`${pageToken[0].jsonName}=${encodeURIComponent(tok)}`] : [];
      },
    });
  }

  // 5. Every caller: no fields, every field with fresh values, every field naming the fixtures.
  for (const caller of callers) add("no fields", caller, { chosen: [], mode: "existing" });
  if (settable.length) {
    for (const caller of callers) add("every field, fresh values", caller, { chosen: s.leaves, mode: "fresh" });
    for (const caller of callers) add("every field, the fixtures' values", caller, { chosen: s.leaves, mode: "existing" });
  }
  return cases;
}

