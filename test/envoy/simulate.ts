// What Envoy does with one request, computed from the config the way Envoy documents
// it: first matching route, first matching jwt_authn rule, the rate-limit descriptors
// the ratelimit filter builds (route + virtual host per vh_rate_limits), the limit
// envoyproxy/ratelimit applies to a descriptor, the headers local_reply_config adds to
// Envoy's own answers, and the www-authenticate realm jwt_authn sends. Matchers this
// file does not model throw, so a config using them cannot pass by accident.
import { JWT, RATELIMIT, TRANSCODER, hcm, httpFilters, vhost, type Json } from "./inputs.js";

export interface Req {
  path: string;
  /** Other request headers (lower-case names). */
  headers?: Record<string, string>;
  /** Native gRPC, or a REST request after transcoding: content-type application/grpc. */
  grpc: boolean;
  /** The content-type as the client sent it; default application/grpc if grpc, else none (GET). */
  contentType?: string;
  /** :method; default POST for gRPC, GET otherwise. */
  method?: string;
}

/** gRPC-Web content-types the grpc_web filter converts (Envoy's ContentTypeValues). */
export const GRPC_WEB_CONTENT_TYPES = ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text", "application/grpc-web-text+proto"];

const MATCH_FIELDS = new Set(["prefix", "path", "safe_regex", "grpc", "case_sensitive", "headers"]);

const contentTypeOf = (req: Req) => req.contentType ?? (req.grpc ? "application/grpc" : undefined);

/** Envoy's Grpc::Common::isGrpcRequestHeaders: application/grpc or application/grpc+<subtype>. */
const isGrpcContentType = (ct: string | undefined) => !!ct && (ct === "application/grpc" || /^application\/grpc[+;]/.test(ct));

function headerValue(req: Req, name: string): string | undefined {
  if (name === "content-type") return contentTypeOf(req);
  if (name === ":method") return req.method ?? (req.grpc || isGrpcContentType(contentTypeOf(req)) ? "POST" : "GET");
  if (name === ":path") return req.path;
  return req.headers?.[name];
}

/** A StringMatcher (exact, prefix, suffix, contains, safe_regex; case-sensitive unless ignore_case). */
export function stringMatches(sm: Json, value: string): boolean {
  const fold = (x: string) => (sm.ignore_case ? x.toLowerCase() : x);
  const v = fold(value);
  if (sm.exact !== undefined) return v === fold(sm.exact);
  if (sm.prefix !== undefined) return v.startsWith(fold(sm.prefix));
  if (sm.suffix !== undefined) return v.endsWith(fold(sm.suffix));
  if (sm.contains !== undefined) return v.includes(fold(sm.contains));
  if (sm.safe_regex) return new RegExp(`^(?:${sm.safe_regex.regex})$`, sm.ignore_case ? "i" : "").test(value);
  throw new Error(`string matcher ${JSON.stringify(sm)} is not simulated`);
}

function headerMatches(h: Json, req: Req): boolean {
  for (const k of Object.keys(h)) {
    if (!["name", "string_match", "present_match", "invert_match", "treat_missing_header_as_empty"].includes(k)) throw new Error(`header matcher field "${k}" is not simulated`);
  }
  const v = headerValue(req, String(h.name).toLowerCase()) ?? (h.treat_missing_header_as_empty ? "" : undefined);
  let ok: boolean;
  if (h.string_match) ok = v !== undefined && stringMatches(h.string_match, v);
  else if (h.present_match !== undefined) ok = (v !== undefined) === h.present_match;
  else throw new Error(`header matcher ${JSON.stringify(h)} is not simulated`);
  return h.invert_match ? !ok : ok;
}

export function matches(m: Json, req: Req): boolean {
  for (const k of Object.keys(m ?? {})) {
    if (!MATCH_FIELDS.has(k)) throw new Error(`route match field "${k}" is not simulated`);
  }
  if (m.case_sensitive === false) throw new Error("case-insensitive matching is not simulated");
  if (m.grpc && !isGrpcContentType(contentTypeOf(req))) return false;
  if (!(m.headers ?? []).every((h: Json) => headerMatches(h, req))) return false;
  if (m.prefix !== undefined) return req.path.startsWith(m.prefix);
  if (m.path !== undefined) return req.path === m.path;
  if (m.safe_regex) return new RegExp(`^(?:${m.safe_regex.regex})$`).test(req.path);
  return false;
}

/** The route Envoy picks (first match), or undefined (404 NR). */
export function routeFor(envoy: Json, req: Req): Json | undefined {
  return (vhost(envoy).routes ?? []).find((r: Json) => matches(r.match, req));
}

/** Where a route sends the request: a cluster name, or { status } for a direct response. */
export function destination(route: Json | undefined): { cluster?: string; status?: number } {
  if (!route) return { status: 404 };
  if (route.direct_response) return { status: route.direct_response.status };
  if (route.route?.cluster) return { cluster: route.route.cluster };
  throw new Error(`route ${route.name}: only route.cluster and direct_response are simulated`);
}

/** Providers a requirement needs, or [] when it lets the request through without a JWT. */
export function providersOf(jwt: Json, req: Json | undefined): string[] {
  if (!req || req.allow_missing !== undefined || req.allow_missing_or_failed !== undefined) return [];
  if (req.provider_name) return [req.provider_name];
  if (req.provider_and_audiences) return [req.provider_and_audiences.provider_name];
  const list = req.requires_any ?? req.requires_all;
  if (list) return list.requirements.flatMap((r: Json) => providersOf(jwt, r));
  throw new Error(`unsupported JWT requirement ${JSON.stringify(req)}`);
}

/** The JWT providers jwt_authn requires for a gRPC path ([] = exempt). */
export function jwtFor(jwt: Json, path: string): { rule: number; providers: string[] } {
  const rules: Json[] = jwt.rules ?? [];
  const i = rules.findIndex((r) => matches(r.match, { path, grpc: true }));
  if (i < 0) return { rule: -1, providers: [] }; // jwt_authn lets unmatched requests through
  const rule = rules[i];
  const req = rule.requirement_name !== undefined ? jwt.requirement_map?.[rule.requirement_name] : rule.requires;
  if (rule.requirement_name !== undefined && !req) throw new Error(`unknown requirement_name ${rule.requirement_name}`);
  return { rule: i, providers: providersOf(jwt, req) };
}

export interface Ctx {
  ip: string;
  /** Dynamic metadata envoy.filters.http.jwt_authn (set only when a JWT was verified). */
  jwtPayload?: Record<string, string>;
}

function entryOf(action: Json, ctx: Ctx, jwtPayloadKey: string): [string, string] | undefined {
  const [kind, a] = Object.entries(action)[0] as [string, Json];
  if (kind === "remote_address") return ["remote_address", ctx.ip];
  if (kind === "generic_key") return [a.descriptor_key || "generic_key", a.descriptor_value];
  if (kind === "metadata") {
    if ((a.source ?? "DYNAMIC") !== "DYNAMIC") throw new Error("only DYNAMIC metadata is simulated");
    const path = (a.metadata_key.path ?? []).map((p: Json) => p.key);
    let v: Json = a.metadata_key.key === JWT && path[0] === jwtPayloadKey ? ctx.jwtPayload : undefined;
    for (const k of path.slice(1)) v = v?.[k];
    if (typeof v === "string") return [a.descriptor_key, v];
    return a.default_value ? [a.descriptor_key, a.default_value] : undefined;
  }
  if (kind === "request_headers") throw new Error(`descriptor ${a.descriptor_key} comes from client header ${a.header_name}, not from the verified JWT`);
  throw new Error(`rate-limit action ${kind} is not simulated`);
}

/** Descriptors the ratelimit filter sends for a routed request, as [key, value][] each. */
export function descriptorsFor(envoy: Json, route: Json, ctx: Ctx, jwtPayloadKey: string): [string, string][][] {
  const filterStage = 0;
  const policy = (limits: Json[] | undefined) => (limits ?? [])
    .filter((l) => (l.stage ?? 0) === filterStage)
    .flatMap((l) => {
      const entries: [string, string][] = [];
      for (const action of l.actions ?? []) {
        const e = entryOf(action, ctx, jwtPayloadKey);
        if (!e) {
          if (action.metadata?.skip_if_absent) continue;
          return []; // a missing value drops the whole descriptor
        }
        entries.push(e);
      }
      return entries.length ? [entries] : [];
    });
  const routeLimits = policy(route.route?.rate_limits);
  const vhLimits = policy(vhost(envoy).rate_limits);
  const option = route.typed_per_filter_config?.[RATELIMIT]?.vh_rate_limits ?? "OVERRIDE";
  if (option === "INCLUDE") return [...routeLimits, ...vhLimits];
  if (option === "IGNORE") return routeLimits;
  return (route.route?.rate_limits ?? []).length ? routeLimits : vhLimits;
}

/** The rate_limit envoyproxy/ratelimit applies to a descriptor (value match, else key-only). */
export function limitFor(config: Json, descriptor: [string, string][]): { node?: Json; path: string } {
  let level: Json[] | undefined = config.descriptors;
  let node: Json | undefined;
  const path: string[] = [];
  for (const [k, v] of descriptor) {
    node = level?.find((d) => d.key === k && d.value === v) ?? level?.find((d) => d.key === k && d.value === undefined);
    if (!node) return { path: path.join("/") };
    path.push(node.value === undefined ? k : `${k}=${node.value}`);
    level = node.descriptors;
  }
  return { node: node?.rate_limit ? node : undefined, path: path.join("/") };
}

export const show = (d: [string, string][]) => `[${d.map(([k, v]) => `(${k}, ${v})`).join(", ")}]`;

/** The request a local reply answers: its headers (lower-case names) as the filters left them. */
export type RequestHeaders = Record<string, string>;

/** An access-log filter as local_reply_config evaluates it on a reply's status and the request. */
function filterMatches(f: Json, status: number, request: RequestHeaders): boolean {
  const keys = Object.keys(f ?? {});
  if (keys.length !== 1) throw new Error(`access-log filter ${JSON.stringify(f)} is not simulated`);
  if (f.and_filter) return f.and_filter.filters.every((x: Json) => filterMatches(x, status, request));
  if (f.or_filter) return f.or_filter.filters.some((x: Json) => filterMatches(x, status, request));
  if (f.header_filter) {
    const contentType = request["content-type"];
    return headerMatches(f.header_filter.header, { path: "/", grpc: false, contentType, method: "POST", headers: request });
  }
  if (f.metadata_filter) {
    // Dynamic metadata, given as request entries "metadata:<filter>/<key>" (the Lua filter's marks).
    const m = f.metadata_filter.matcher;
    if (m.path?.length !== 1 || m.invert || Object.keys(m.value ?? {}).join() !== "bool_match") throw new Error(`metadata filter ${JSON.stringify(f)} is not simulated`);
    const v = request[`metadata:${m.filter}/${m.path[0].key}`];
    if (v === undefined) return f.metadata_filter.match_if_key_not_found !== false;
    return v === String(m.value.bool_match);
  }
  if (!f.status_code_filter) throw new Error(`access-log filter ${JSON.stringify(f)} is not simulated`);
  const c = f.status_code_filter.comparison;
  const v = Number(c.value?.default_value ?? 0);
  const op = c.op ?? "EQ";
  if (op === "EQ") return status === v;
  if (op === "GE") return status >= v;
  if (op === "LE") return status <= v;
  throw new Error(`comparison op ${op} is not simulated`);
}

/** A header value as Envoy's formatter renders it: %RESP(x)% from the reply headers; others throw. */
function formatHeader(value: string, response: Record<string, string>): string {
  return value.replace(/%([^%]*)%/g, (_, op: string) => {
    const resp = /^RESP\(([^)?:]+)\)$/.exec(op);
    if (!resp) throw new Error(`header formatter %${op}% is not simulated`);
    return response[resp[1].toLowerCase()] ?? ""; // a missing header renders empty
  });
}

/** HeaderParser::evaluateHeaders: empty values are skipped (keep_empty_value unset). */
export function applyHeaders(options: Json[] | undefined, headers: Record<string, string>): void {
  const out: [string, string, string][] = [];
  for (const o of options ?? []) {
    if (o.keep_empty_value) throw new Error("keep_empty_value is not simulated");
    const key = String(o.header.key).toLowerCase();
    const value = formatHeader(String(o.header.value ?? ""), headers);
    if (value !== "") out.push([key, value, o.append_action ?? "APPEND_IF_EXISTS_OR_ADD"]);
  }
  for (const [key, value, action] of out) {
    if (action === "OVERWRITE_IF_EXISTS_OR_ADD") headers[key] = value;
    else if (action === "ADD_IF_ABSENT") headers[key] ??= value;
    else if (action === "APPEND_IF_EXISTS_OR_ADD") headers[key] = headers[key] === undefined ? value : `${headers[key]},${value}`;
    else throw new Error(`append_action ${action} is not simulated`);
  }
}

/**
 * A REST request after the transcoder mapped it (it sets x-envoy-original-path); like every request
 * the filters saw, it carries the Lua filter's "filtered" mark (dynamic metadata acme.edge).
 */
export const REST_REQUEST: RequestHeaders = { "content-type": "application/grpc", "x-envoy-original-path": "/v1/x", "metadata:acme.edge/filtered": "true" };

export interface SimulatedReply {
  headers: Record<string, string>;
  /** The body after the mapper (the replying filter's text when no mapper rewrites it). */
  body: string;
}

/**
 * One of Envoy's own answers (sendLocalReply): the replying filter's headers and text, then
 * the first local_reply_config mapper whose filter matches (status and request headers):
 * its headers and, with body_format_override json_format, the body it formats.
 */
export function localReplyOf(envoy: Json, status: number, opts: { fromFilter?: Record<string, string>; text?: string; request?: RequestHeaders } = {}): SimulatedReply {
  const headers = Object.fromEntries(Object.entries(opts.fromFilter ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const request = opts.request ?? REST_REQUEST;
  const mapper = (hcm(envoy).local_reply_config?.mappers ?? []).find((m: Json) => filterMatches(m.filter, status, request));
  if (mapper?.status_code !== undefined || mapper?.body !== undefined) throw new Error("local reply mappers that change status or body text are not simulated");
  applyHeaders(mapper?.headers_to_add, headers);
  let body = opts.text ?? "";
  const format = mapper?.body_format_override;
  if (format) {
    if (format.text_format_source?.inline_string !== undefined) {
      const text = String(format.text_format_source.inline_string).replace(/%([^%]*)%/g, (_, op: string) => {
        if (op !== "LOCAL_REPLY_BODY") throw new Error(`body formatter %${op}% is not simulated`);
        return opts.text ?? "";
      });
      return { headers: { ...headers, "content-type": format.content_type ?? "text/plain" }, body: text };
    }
    if (!format.json_format) throw new Error("only json_format and text_format_source bodies are simulated");
    const render = (v: unknown): unknown =>
      typeof v === "string"
        ? v.replace(/%([^%]*)%/g, (_, op: string) => {
          if (op !== "LOCAL_REPLY_BODY") throw new Error(`body formatter %${op}% is not simulated`);
          return opts.text ?? "";
        })
        : v;
    body = JSON.stringify(Object.fromEntries(Object.entries(format.json_format).map(([k, v]) => [k, render(v)])));
    headers["content-type"] = format.content_type ?? "application/json";
  }
  return { headers, body };
}

/** The headers of a local reply to a REST request (see localReplyOf). */
export function localReply(envoy: Json, status: number, fromFilter: Record<string, string> = {}): Record<string, string> {
  return localReplyOf(envoy, status, { fromFilter }).headers;
}

/**
 * jwt_authn's realm for a refused request: `<:scheme>://<host><x-envoy-original-path or :path>`
 * (Http::Utility::buildOriginalUri, path cut at 256), as the request headers stand when
 * jwt_authn runs. Walks the filters before it: Lua drops client x-envoy-* headers, the
 * transcoder (on a REST path it maps) keeps the REST path in x-envoy-original-path.
 */
export function jwtRealm(envoy: Json, req: { host: string; path: string; grpcPath?: string; clientHeaders?: Record<string, string> }): string {
  const headers: Record<string, string> = { ...req.clientHeaders, ":path": req.path };
  for (const f of httpFilters(envoy)) {
    if (f.name === JWT) {
      return `http://${req.host}${(headers["x-envoy-original-path"] ?? headers[":path"]).slice(0, 256)}`;
    }
    if (f.name === "envoy.filters.http.lua") {
      const lua: string = f.typed_config.default_source_code.inline_string;
      const prefixes = [...(/local prefixes = \{([^}]*)\}/.exec(lua)?.[1] ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1]);
      const keep = [...(/local keep = \{([^}]*)\}/.exec(lua)?.[1] ?? "").matchAll(/\["([^"]+)"\]/g)].map((m) => m[1]);
      for (const name of Object.keys(headers)) if (!keep.includes(name) && prefixes.some((p) => name.startsWith(p))) delete headers[name];
    }
    if (f.name === TRANSCODER && req.grpcPath) {
      headers["x-envoy-original-path"] = headers[":path"];
      headers[":path"] = req.grpcPath;
    }
  }
  throw new Error("no jwt_authn filter");
}
