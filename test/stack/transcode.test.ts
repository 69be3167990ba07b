// REST transcoding, Envoy against the embedded edge: every google.api.http route
// of every service is called through the real Envoy (its own stack of separate
// processes) and through the embedded edge (the whole product in process) with
// the same JSON requests, and the answers (status, body, meaningful headers) are
// compared. The requests come from the descriptors alone (edge/routes.ts
// compileRoutes(): template, body rule, input message, policy), so a new route,
// field or service is covered without new test code:
//
// - path variables are filled from fixtures by the field's resource type (an
//   `id` of a request in user.proto is a User id, `order.id` an Order id,
//   `user_id` a User id; unknown resources get a UUID that exists nowhere);
// - bodies and query parameters are generated from the input message: every
//   field with a sample value chosen by type and name (fresh values, or values
//   naming the fixtures), one field at a time, no field at all, no body, a body
//   repeating a path-bound field, paging with a next_page_token, and
//   deliberately invalid variants (a wrong JSON type per field, malformed
//   JSON, an array as the body, an unknown or ill-typed query
//   parameter, another HTTP method on the route's path);
// - callers come from the policy: no token, another user, the owner of the
//   fixtures, an admin.
//
// Each route gets its own fixtures (an owner and another user, each with an
// order and a session; a fresh admin login), created the same way in the same
// order on both edges, so the mutating routes (delete, cancel, logout,
// password change, deactivation) cannot break the routes after them, and each
// request runs on both edges in step. What legitimately differs between two
// deployments is normalised: UUIDs, JWTs and opaque tokens (refresh tokens,
// page tokens, key material) must correspond one to one across the run (a
// bijection learnt from the answers, seeded with the fixtures), timestamps
// must be RFC 3339 on both sides, fixture emails differ only by a per-edge
// suffix, realms only by the base URL. Differences that cannot be removed are
// listed in ALLOWED below with the reason; everything else must be identical.
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { ScalarType, type DescEnum, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { loadRateLimitConfig } from "../../edge/ratelimit.js";
import { compileRoutes, type Route } from "../../edge/routes.js";
import { parseTemplate } from "../../edge/template.js";
import { Access } from "../../platform/policy.js";
import { call, loginAdmin, PASSWORD, startTarget, type Answer, type Target, type User } from "../edge/conformance/target.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startEdgeStack } from "../support/edge-stack.js";

// ---------------------------------------------------------------------------
// Routes and the requests generated for them

/** GET first, DELETE last (each route has its own fixtures; this only keeps the run readable). */
const METHOD_RANK: Record<string, number> = { GET: 0, POST: 1, PUT: 1, PATCH: 1, DELETE: 2 };
const COMPILED = compileRoutes();
const ROUTES: readonly Route[] = [...COMPILED.routes].sort((a, b) => (METHOD_RANK[a.httpMethod] ?? 1) - (METHOD_RANK[b.httpMethod] ?? 1));
const routeKey = (r: Route) => `${r.httpMethod} ${r.template}`;

type CallerName = "anonymous" | "other" | "owner" | "admin";
type Mode = "existing" | "fresh";

/** A user of one route's fixtures, with an order and a session. */
interface Party {
  tag: string;
  id: string;
  email: string;
  access: string;
  refresh: string;
  orderId: string;
  requestId: string;
  sessionId: string;
}

/** The resources fixtures hold, by message name: a request's `id` / `<name>_id` of that type gets this. */
const FIXTURE_RESOURCES: Record<string, "id" | "orderId" | "sessionId"> = { User: "id", Order: "orderId", Session: "sessionId" };

/** A UUID no edge knows (the same on both). */
const MISSING_ID = randomUUID();
const NEW_PASSWORD = "transcode-new-password-2";

interface EdgeState {
  readonly name: "embedded" | "envoy";
  readonly t: Target;
  /** Per-edge suffix of fixture emails (normalised to <sfx>). */
  readonly sfx: string;
  admin?: User;
  owner?: Party;
  other?: Party;
  routeIndex: number;
  /** The previous answer on this edge (paging). */
  last?: Answer;
}

interface HttpRequest {
  method: string;
  path: string;
  token?: string;
  /** JSON value (sent as JSON) or raw text. */
  body?: { json: unknown } | { raw: string };
}

interface Case {
  route: Route;
  variant: string;
  caller: CallerName;
  /** Deliberately invalid (the request cannot be transcoded, or names something unknown). */
  invalid?: "json" | "query" | "method";
  build(e: EdgeState): HttpRequest;
}

type LeafPath = readonly DescField[];

const WKT_SCALARISH = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.Empty",
  "google.protobuf.Any",
]);
const isWrapper = (m: DescMessage) => m.typeName.startsWith("google.protobuf.") && m.typeName.endsWith("Value") && m.fields.length === 1 && m.fields[0].name === "value";
const isLeafMessage = (m: DescMessage) => WKT_SCALARISH.has(m.typeName) || isWrapper(m);

/** Every leaf field of a message (singular sub-messages expanded, depth-limited), as field paths. */
function leavesOf(m: DescMessage, prefix: LeafPath = [], depth = 0): LeafPath[] {
  const out: LeafPath[] = [];
  for (const f of m.fields) {
    const path = [...prefix, f];
    if (f.fieldKind === "message" && !isLeafMessage(f.message) && depth < 3) out.push(...leavesOf(f.message, path, depth + 1));
    else out.push(path);
  }
  return out;
}

const samePath = (a: LeafPath, b: readonly DescField[]) => a.length === b.length && a.every((f, i) => f === b[i]);
const startsWith = (a: LeafPath, prefix: readonly DescField[]) => prefix.length <= a.length && prefix.every((f, i) => f === a[i]);
const jsonPath = (p: LeafPath) => p.map((f) => f.jsonName).join(".");

function resolve(m: DescMessage, names: readonly string[]): DescField[] {
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
interface Shape {
  pathVars: { name: string; fields: DescField[] }[];
  /** The leaves a client may set (not bound by the path). */
  leaves: LeafPath[];
  /** The fields receiving the body ([] for "*", undefined without a body). */
  bodyPrefix?: DescField[];
}

function shapeOf(r: Route): Shape {
  const pathVars = parseTemplate(r.template).variables.map((v) => ({ name: v.fieldPath.join("."), fields: resolve(r.input, v.fieldPath) }));
  const leaves = leavesOf(r.input).filter((l) => !pathVars.some((v) => samePath(l, v.fields)));
  const bodyPrefix = r.body === "*" ? [] : r.body ? resolve(r.input, r.body.split(".")) : undefined;
  return { pathVars, leaves, bodyPrefix };
}

const inBody = (s: Shape, l: LeafPath) => s.bodyPrefix !== undefined && startsWith(l, s.bodyPrefix);

/** The resource a string field names: `id` of a nested message is that message's; `id` of a request is its file's resource; `user_id` a User. */
function resourceOf(r: Route, path: LeafPath): string | undefined {
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

function fixtureId(e: EdgeState, resource: string | undefined, who: "owner" | "other"): string | undefined {
  const key = resource ? FIXTURE_RESOURCES[resource] : undefined;
  if (!key) return undefined;
  return e[who]![key];
}

interface Gen {
  r: Route;
  e: EdgeState;
  mode: Mode;
}

function stringSample(g: Gen, path: LeafPath): string | undefined {
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

function scalarSample(g: Gen, path: LeafPath, type: ScalarType): JsonValue | undefined {
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

const firstNonZero = (en: DescEnum) => (en.values.find((v) => v.number !== 0) ?? en.values[0]).name;

function messageSample(g: Gen, path: LeafPath, m: DescMessage): JsonValue | undefined {
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
function leafSample(g: Gen, path: LeafPath): JsonValue | undefined {
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

const isFieldMask = (l: LeafPath) => {
  const f = l[l.length - 1];
  return f.fieldKind === "message" && f.message.typeName === "google.protobuf.FieldMask";
};

/**
 * A JSON object for the chosen leaves (relative to `base`, a message field path).
 * A FieldMask names the chosen leaves of its sibling message fields (update_mask
 * next to user: "name"); it is left out when it would be empty.
 */
function buildObject(g: Gen, chosen: readonly LeafPath[], base: readonly DescField[], override?: { leaf: LeafPath; value: JsonValue }): Record<string, JsonValue> {
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
function queryOf(g: Gen, leaves: readonly LeafPath[], override?: { leaf: LeafPath; value: JsonValue }): string[] {
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

type PathVariant = "own" | "other's" | "missing" | "malformed";

interface RequestSpec {
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

function buildRequest(r: Route, s: Shape, e: EdgeState, caller: CallerName, spec: RequestSpec): HttpRequest {
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
function wrongType(l: LeafPath): JsonValue {
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
function wrongQueryValue(l: LeafPath): string | undefined {
  const f = l[l.length - 1];
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) return "NO_SUCH_VALUE";
  if (f.fieldKind === "message") return f.message.typeName === "google.protobuf.Timestamp" ? "yesterday" : undefined;
  if (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES) return undefined;
  if (f.scalar === ScalarType.BOOL) return "maybe";
  return "not-a-number";
}

/** The requests of one route, in the order they run on both edges. */
function casesFor(r: Route): Case[] {
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

// ---------------------------------------------------------------------------
// Comparing two answers

type VolatileClass = "jwt" | "uuid" | "time" | "opaque";
const VOLATILE = /(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))/gi;
/** A whole string that is an opaque credential or cursor: base64url, 20+ characters, or such parts joined by dots (signed page tokens). */
const OPAQUE = /^[A-Za-z0-9_-]{20,}={0,2}(\.[A-Za-z0-9_-]{10,}={0,2})*$/;

interface Piece {
  literal: string;
  cls?: VolatileClass;
}

function pieces(s: string): Piece[] {
  if (OPAQUE.test(s) && !/^[a-z_]+$/i.test(s)) return [{ literal: s, cls: "opaque" }];
  const out: Piece[] = [];
  let at = 0;
  for (const m of s.matchAll(VOLATILE)) {
    if (m.index! > at) out.push({ literal: s.slice(at, m.index) });
    out.push({ literal: m[0], cls: m[1] ? "jwt" : m[2] ? "uuid" : "time" });
    at = m.index! + m[0].length;
  }
  if (at < s.length) out.push({ literal: s.slice(at) });
  return out;
}

/** A one-to-one correspondence between the two edges' volatile values, with display labels. */
class Pairing {
  private readonly a = new Map<string, string>();
  private readonly b = new Map<string, string>();
  private n = 0;

  seed(label: string, a: string, b: string) {
    this.a.set(a, label);
    this.b.set(b, label);
  }

  learn(cls: VolatileClass, a: string, b: string) {
    if (cls === "time" || this.a.has(a) || this.b.has(b)) return;
    const label = `<${cls}#${++this.n}>`;
    this.a.set(a, label);
    this.b.set(b, label);
  }

  label(side: "a" | "b", p: Piece): string {
    if (!p.cls) return p.literal;
    if (p.cls === "time") return "<time>";
    return (side === "a" ? this.a : this.b).get(p.literal) ?? `<${p.cls}?>`;
  }
}

/** Learn pairs where both answers have volatile values at the same place. */
function learn(pairing: Pairing, a: unknown, b: unknown): void {
  if (typeof a === "string" && typeof b === "string") {
    const pa = pieces(a);
    const pb = pieces(b);
    if (pa.length !== pb.length) return;
    pa.forEach((p, i) => {
      if (p.cls && p.cls === pb[i].cls) pairing.learn(p.cls, p.literal, pb[i].literal);
    });
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) learn(pairing, a[i], b[i]);
  } else if (a && b && typeof a === "object" && typeof b === "object") {
    for (const k of Object.keys(a)) if (k in b) learn(pairing, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
  }
}

function render(pairing: Pairing, side: "a" | "b", v: unknown): unknown {
  if (typeof v === "string") return pieces(v).map((p) => pairing.label(side, p)).join("");
  if (Array.isArray(v)) return v.map((x) => render(pairing, side, x));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(pairing, side, x)]));
  return v;
}

/** The headers compared (others differ by deployment: x-request-id, date, server, rate-limit counters, envoy's own). */
const COMPARED_HEADERS = ["content-type", "cache-control", "www-authenticate", "allow"];

interface Seen {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

function normalisedText(e: EdgeState, text: string): string {
  let out = text.split(e.sfx).join("<sfx>").split(e.t.url).join("<base-url>");
  if (e.t.admin) out = out.split(e.t.admin.email).join("<admin-email>");
  return out;
}

function seen(e: EdgeState, a: Answer): { raw: Seen } {
  const headers: Record<string, string> = {};
  for (const h of COMPARED_HEADERS) {
    const v = a.headers.get(h);
    if (v !== null) headers[h] = normalisedText(e, h === "content-type" ? v.toLowerCase().replace(/\s+/g, "") : v);
  }
  const text = normalisedText(e, a.text);
  let body: unknown = text;
  if (a.json !== undefined) body = JSON.parse(text);
  return { raw: { status: a.status, headers, body } };
}

// ---------------------------------------------------------------------------
// Differences that cannot be removed, each with its reason. Everything else is strict.

interface Allowance {
  name: string;
  reason: string;
  applies(c: Case, a: Seen, b: Seen): boolean;
}

/** An edge's own refusal: {"code", "message"} and nothing else (a service's error may carry details). */
const isLocalReply = (x: Seen, status: number, code: number) => {
  const b = x.body as { code?: unknown; message?: unknown } | undefined;
  return x.status === status && !!b && typeof b === "object" && b.code === code && typeof b.message === "string" && Object.keys(b).every((k) => ["code", "message"].includes(k));
};

const ALLOWED: Allowance[] = [
  {
    name: "the wording of a transcoding error",
    reason:
      "A request that cannot be transcoded is refused by each edge's own JSON/protobuf parser (protobuf-es in " +
      "the embedded edge, protobuf's C++ JSON parser in Envoy's transcoder) in that parser's words " +
      '("expected string, got 12345" / "invalid value 12345 for type TYPE_STRING"); the contract is the status, ' +
      "the code and the error shape (edge/README.md: the message is the edge's own text). Both must refuse it " +
      "before any service, with the same status, code, shape and headers.",
    applies: (c, a, b) =>
      (c.invalid === "json" || c.invalid === "query") && isLocalReply(a, 400, 3) && isLocalReply(b, 400, 3) && JSON.stringify(a.headers) === JSON.stringify(b.headers),
  },
  {
    name: "405 from the embedded edge where Envoy answers 404",
    reason:
      "A path some route has, with a method none has: Envoy's transcoder looks method and path up together " +
      "(reject_unknown_method) and answers 404; the embedded edge answers 405 with Allow (edge/README.md, " +
      '"Where it differs from Envoy, on purpose"). Both refuse before the JWT check and any service.',
    applies: (c, a, b) =>
      c.invalid === "method" &&
      isLocalReply(a, 405, 12) &&
      !!a.headers.allow &&
      isLocalReply(b, 404, 5) &&
      (b.body as { message: string }).message === "no route matches this path" &&
      a.headers["content-type"] === b.headers["content-type"] &&
      a.headers["cache-control"] === b.headers["cache-control"],
  },
];

// ---------------------------------------------------------------------------

describe("transcoding: Envoy answers every REST route as the embedded edge does", function () {
  this.timeout(600_000);
  const edges: EdgeState[] = [];
  const pairing = new Pairing();
  const stats = { routes: 0, requests: 0, allowed: new Map<string, number>() };
  let failures = 0;

  before(async function () {
    this.timeout(300_000);
    const rl = tempRateLimitConfig(GENEROUS_LIMITS);
    // Its own stack (not the shared one): lists (ListUsers) must hold the same users on both edges.
    const [embedded, stack] = await Promise.all([startTarget("embedded"), startEdgeStack({ ratelimitConfig: rl.path })]);
    const envoy: Target = {
      kind: "envoy",
      url: stack.edgeUrl,
      embedded: false,
      limits: loadRateLimitConfig(rl.path),
      admin: stack.admin,
      stack,
      stop: async () => {
        await stack.close();
        rl.remove();
      },
    };
    for (const [name, t] of [["embedded", embedded], ["envoy", envoy]] as const) edges.push({ name, t, sfx: randomBytes(5).toString("hex"), routeIndex: -1 });
    const admins = await Promise.all(edges.map((e) => firstAdminLogin(e.t)));
    pairing.seed("<admin.id>", admins[0].id, admins[1].id);
  });

  after(async () => {
    await Promise.all(edges.map((e) => e.t.stop()));
    const allowed = [...stats.allowed].map(([k, n]) => `${k}: ${n}`).join("; ");
    console.log(`      transcode: ${stats.routes} routes, ${stats.requests} requests compared (Envoy vs embedded)${allowed ? `; allowed differences: ${allowed}` : ""}${failures ? `; ${failures} differences` : ""}`);
  });

  /** The admin is created in the background at the first start of either edge: wait for it. */
  async function firstAdminLogin(t: Target): Promise<User> {
    for (let i = 0; ; i++) {
      try {
        return await loginAdmin(t);
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** One route's fixtures on one edge: an owner and another user, each with an order and a session; a fresh admin login. */
  async function fixtures(e: EdgeState, i: number): Promise<void> {
    e.routeIndex = i;
    const party = async (tag: string): Promise<Party> => {
      const email = `${tag}-${e.sfx}@example.com`;
      const reg = await call(e.t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: `Fixture ${tag}` } });
      assert.equal(reg.status, 200, `${e.name} fixture register ${tag}: ${reg.text}`);
      const access = reg.json.tokens.accessToken as string;
      const requestId = `fixture-${tag}`;
      const order = await call(e.t, "POST", "/v1/orders", { token: access, body: { product: "fixture widget", quantity: 1, unitPriceCents: "250", requestId } });
      assert.equal(order.status, 200, `${e.name} fixture order ${tag}: ${order.text}`);
      const sessions = await call(e.t, "GET", "/v1/auth/sessions", { token: access });
      assert.equal(sessions.status, 200, `${e.name} fixture sessions ${tag}: ${sessions.text}`);
      const current = (sessions.json.sessions as { id: string; current?: boolean }[]).find((x) => x.current);
      assert.ok(current, `${e.name} fixture session ${tag}: ${sessions.text}`);
      return { tag, id: reg.json.user.id, email, access, refresh: reg.json.tokens.refreshToken, orderId: order.json.order.id, requestId, sessionId: current.id };
    };
    e.owner = await party(`owner${i}`);
    e.other = await party(`other${i}`);
    e.admin = await loginAdmin(e.t);
    e.last = undefined;
  }

  function seedFixtures(i: number) {
    const [a, b] = edges;
    for (const who of ["owner", "other"] as const) {
      const pa = a[who]!;
      const pb = b[who]!;
      for (const k of ["id", "access", "refresh", "orderId", "sessionId"] as const) pairing.seed(`<${pa.tag}.${k}>`, pa[k], pb[k]);
    }
    pairing.seed(`<admin.access#${i}>`, a.admin!.access, b.admin!.access);
    pairing.seed(`<admin.refresh#${i}>`, a.admin!.refresh, b.admin!.refresh);
    pairing.seed("<missing-id>", MISSING_ID, MISSING_ID);
  }

  const describeRequest = (req: HttpRequest) =>
    `${req.method} ${req.path}${req.body ? ` ${"raw" in req.body ? req.body.raw : JSON.stringify(req.body.json)}` : ""}`;

  ROUTES.forEach((route, i) => {
    it(`${routeKey(route)} (${route.method.parent.name}.${route.method.name})`, async () => {
      await Promise.all(edges.map((e) => fixtures(e, i)));
      seedFixtures(i);
      stats.routes++;
      const problems: string[] = [];
      for (const c of casesFor(route)) {
        const reqs = edges.map((e) => c.build(e));
        const answers = await Promise.all(
          edges.map((e, k) => {
            const req = reqs[k];
            const body = req.body === undefined ? undefined : "raw" in req.body ? req.body.raw : req.body.json;
            return call(e.t, req.method, req.path, { token: req.token, body, headers: body !== undefined ? { "content-type": "application/json" } : {} });
          }),
        );
        edges.forEach((e, k) => (e.last = answers[k]));
        stats.requests++;
        const [sa, sb] = edges.map((e, k) => seen(e, answers[k]).raw);
        learn(pairing, sa.body, sb.body);
        learn(pairing, sa.headers, sb.headers);
        const ra = { status: sa.status, headers: render(pairing, "a", sa.headers), body: render(pairing, "a", sa.body) };
        const rb = { status: sb.status, headers: render(pairing, "b", sb.headers), body: render(pairing, "b", sb.body) };
        if (JSON.stringify(ra) === JSON.stringify(rb)) continue;
        const allowance = ALLOWED.find((x) => x.applies(c, sa, sb));
        if (allowance) {
          stats.allowed.set(allowance.name, (stats.allowed.get(allowance.name) ?? 0) + 1);
          continue;
        }
        failures++;
        problems.push(
          [
            `${routeKey(route)} | ${c.variant} | caller: ${c.caller}`,
            `  request:  ${render(pairing, "a", describeRequest(reqs[0]))}${reqs[0].token ? " (with a token)" : ""}`,
            `  embedded: ${ra.status} ${JSON.stringify(ra.headers)} ${JSON.stringify(ra.body)}`,
            `  envoy:    ${rb.status} ${JSON.stringify(rb.headers)} ${JSON.stringify(rb.body)}`,
          ].join("\n"),
        );
      }
      if (problems.length) assert.fail(`${problems.length} answer(s) differ between the edges:\n${problems.join("\n")}`);
    });
  });

  it("every allowed difference was seen (a stale entry in ALLOWED is removed)", function () {
    // Meaningful only when every route ran (not a --grep run) and agreed: a failing route may hide its allowed difference.
    if (stats.routes < ROUTES.length || failures > 0) this.skip();
    const unused = ALLOWED.filter((a) => !stats.allowed.has(a.name)).map((a) => a.name);
    assert.deepEqual(unused, [], "allowances never needed: remove them");
  });
});
