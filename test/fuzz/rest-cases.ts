// Malformed REST requests for every route of gen/openapi.json: a plausible
// request built from the route's schemas, then broken one way (wrong types, huge
// or negative numbers, deep JSON, invalid UTF-8, NUL bytes, truncation, extra
// fields, wrong content-types, bad path params and query strings, bad or
// oversized headers). Deterministic for a seed.
import { readFileSync } from "node:fs";
import { Rng } from "./random.js";

export interface FuzzRequest {
  proto: "rest" | "connect" | "grpc";
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** What was broken, for the report. */
  what: string;
  /** A refusal by closing the connection is acceptable (oversized headers). */
  mayReset?: boolean;
}

type Schema = { $ref?: string; type?: string; format?: string; enum?: string[]; properties?: Record<string, Schema>; items?: Schema };
interface Op { method: string; template: string; params: { name: string; in: string; schema: Schema }[]; body?: Schema; secured: boolean }

const doc = JSON.parse(readFileSync(new URL("../../gen/openapi.json", import.meta.url), "utf8"));
const resolve = (s: Schema): Schema => (s.$ref ? resolve(doc.components.schemas[s.$ref.split("/").pop()!]) : s);

export const OPERATIONS: Op[] = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([template, ops]) =>
  Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(),
    template,
    params: op.parameters ?? [],
    body: op.requestBody?.content?.["application/json"]?.schema,
    secured: Boolean(op.security?.length),
  })),
);

/** A valid-looking value for a schema. */
function sample(s: Schema, rng: Rng, depth = 0): unknown {
  s = resolve(s);
  if (s.enum) return rng.pick(s.enum);
  if (s.format === "int64") return String(rng.int(5000));
  if (s.type === "integer") return 1 + rng.int(10);
  if (s.type === "boolean") return rng.chance(0.5);
  if (s.type === "array") return depth > 3 ? [] : [sample(s.items ?? {}, rng, depth + 1)];
  if (s.type === "object" || s.properties) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s.properties ?? {})) if (depth < 3) o[k] = sample(v, rng, depth + 1);
    return o;
  }
  if (s.format === "date-time") return new Date(1_700_000_000_000 + rng.int(1e9)).toISOString();
  return rng.pick(["fuzz@example.com", "correct horse battery", "widget", "x", rng.uuid()]);
}

const WEIRD_VALUES: unknown[] = [
  null, true, -1, 0, 1.5, -2147483649, 2147483648, 9223372036854775807, "9223372036854775808", "-9223372036854775809", 1e308, -1e308,
  "1e309", "NaN", "Infinity", "", " ", "\u0000", "a\u0000b", "\u202e\u200b", "😀".repeat(50), "x".repeat(70_000), [], [1, "2"], {}, { "@type": "x" },
  "ORDER_STATUS_NOPE", 99, "../../etc/passwd", "' OR 1=1 --", "<script>", "%00", "\ud800", "true",
];

const deep = (n: number, open: string, close: string, inner = "1") => open.repeat(n) + inner + close.repeat(n);

/** A JSON body (as bytes) broken one way, starting from a plausible object. */
export function brokenBody(base: Record<string, unknown>, rng: Rng): { body: Buffer; what: string } {
  const keys = Object.keys(base);
  const key = keys.length ? rng.pick(keys) : "field";
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  switch (rng.int(16)) {
    case 0: {
      const v = rng.pick(WEIRD_VALUES);
      return { body: json({ ...base, [key]: v }), what: `field ${key} = ${JSON.stringify(v)?.slice(0, 40)}` };
    }
    case 1:
      return { body: json({ ...base, [`extra${rng.int(100)}`]: rng.pick(WEIRD_VALUES) }), what: "an unknown field" };
    case 2: {
      const n = rng.pick([64, 200, 1000, 10_000, 100_000]);
      return { body: Buffer.from(`{"${key}":${deep(n, "[", "]")}}`), what: `${n}-deep arrays in ${key}` };
    }
    case 3: {
      const n = rng.pick([64, 500, 5000, 50_000]);
      return { body: Buffer.from(deep(n, '{"a":', "}")), what: `${n}-deep objects` };
    }
    case 4: {
      const s = JSON.stringify({ ...base, [key]: "INVALID" });
      const bad = rng.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0xc0, 0x80])]);
      const [a, b] = s.split("INVALID");
      return { body: Buffer.concat([Buffer.from(a), bad, Buffer.from(b)]), what: `invalid UTF-8 ${bad.toString("hex")} in ${key}` };
    }
    case 5: {
      const [a, b] = JSON.stringify({ ...base, [key]: "NUL" }).split("NUL");
      return { body: Buffer.concat([Buffer.from(a + "a"), Buffer.from([0]), Buffer.from("b" + b)]), what: `raw NUL byte in ${key}` };
    }
    case 6:
      return { body: json({ ...base, [key]: `x\u0000y` }), what: `escaped \\u0000 in ${key}` };
    case 7: {
      const s = JSON.stringify(base);
      const cut = 1 + rng.int(Math.max(1, s.length - 1));
      return { body: Buffer.from(s.slice(0, cut)), what: `JSON truncated at ${cut}` };
    }
    case 8:
      return { body: Buffer.from(rng.pick(["", "null", "[]", "1", '"x"', "true", "{", "}", "{}{}", "\ufeff{}", "{'a':1}", '{"a":1,}', "{a:1}", "NaN"])), what: "not an object" };
    case 9:
      return { body: Buffer.from(`{"${key}":1,"${key}":"two"}`), what: `duplicate key ${key}` };
    case 10:
      return { body: rng.bytes(1 + rng.int(200)), what: "random bytes" };
    case 11:
      return { body: rng.mutate(json(base)), what: "mutated JSON bytes" };
    case 12:
      return { body: Buffer.from(`{"${key}":${rng.pick(["1e99999", "-0", "0x10", "01", "1.", ".5", "+1", "-", "1e-99999", "123456789012345678901234567890"])}}`), what: `bad number in ${key}` };
    case 13:
      return { body: Buffer.from(`{"${key}":"\\u${rng.pick(["d800", "dfff", "zzzz", "00"])}"}`), what: `bad escape in ${key}` };
    case 14:
      return { body: json({ ...base, [key]: { [key]: base[key], nested: [{ a: null }] } }), what: `object for ${key}` };
    default:
      return { body: Buffer.from(`{"${key}":"${"\\\\".repeat(1 + rng.int(3))}${"\t\r\n\b\f".charAt(rng.int(5))}"}`), what: `control characters in ${key}` };
  }
}

const BAD_PATH_PARAMS = [
  "", "%00", "a%00b", "%FF%FE", "%C0%AF", "%", "%Z1", "..", "..%2F..%2Fetc", "%2F", "-1", "0", "1e309", "9".repeat(40), "x".repeat(5000),
  "00000000-0000-0000-0000-000000000000", "not-a-uuid", "%E2%80%AE", "%F0%9F%98%80", "a%20b", "a;b", "a%3Acancel", "%2e%2e", "*", "'",
];

const CONTENT_TYPES = [
  "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/grpc",
  "application/proto", "application/xml", "application/json, text/plain", "application/jsonx", ";;;", "application/json; charset=utf-8; x=\"", "*/*", "",
];

/** Headers broken one way. */
function brokenHeaders(rng: Rng, token: string | undefined): { headers: Record<string, string>; what: string; mayReset?: boolean } {
  switch (rng.int(9)) {
    case 0:
      return { headers: { "x-fuzz": "a".repeat(rng.pick([17_000, 40_000, 70_000])) }, what: "oversized header", mayReset: true };
    case 1: {
      const h: Record<string, string> = {};
      for (let i = 0; i < rng.pick([120, 500]); i++) h[`x-fuzz-${i}`] = "v".repeat(40);
      return { headers: h, what: "many headers", mayReset: true };
    }
    case 2:
      return { headers: { authorization: rng.pick(["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer a.b.c", "Bearer ..", "Bearer " + "A".repeat(10_000), "bearer x.y.z", `Bearer ${token ?? "x"}x`, "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "Bearer eyJ9.eyJ9.eyJ9"]) }, what: "bad authorization" };
    case 3:
      return { headers: { "x-forwarded-for": rng.pick(["999.1.1.1", "::::", "a".repeat(3000), "1.1.1.1, ", ""]) }, what: "bad x-forwarded-for" };
    case 4:
      return { headers: { "content-encoding": rng.pick(["gzip", "br", "deflate", "identity, gzip", "zstd", "x"]) }, what: "content-encoding on a plain body" };
    case 5:
      return { headers: { "connect-protocol-version": rng.pick(["1", "2", "x"]), "connect-timeout-ms": rng.pick(["-1", "abc", "99999999999999"]) }, what: "connect headers on REST" };
    case 6:
      return { headers: { accept: rng.pick(["application/xml", "*/*;q=x", "", "text/html"]), "accept-encoding": rng.pick(["gzip;q=2", "x", "*"]) }, what: "odd accept" };
    case 7:
      return { headers: { origin: rng.pick(["null", "http://evil.example", "*", "http://localhost:3000"]) }, what: "origin" };
    default:
      return { headers: { "grpc-timeout": rng.pick(["1n", "xx", "99999999999H"]), te: "trailers" }, what: "grpc headers on REST" };
  }
}

function queryString(op: Op, rng: Rng): { qs: string; what: string } {
  const q = op.params.filter((p) => p.in === "query");
  const name = q.length && rng.chance(0.8) ? rng.pick(q).name : rng.pick(["colour", "fields", "$alt", "a[b]", "%00", "pageSize.x"]);
  const v = rng.pick(["abc", "-1", "0", "99999999999999999999", "1.5", "%FF", "%00", "ORDER_STATUS_NOPE", "x".repeat(9000), "", "%", "%ZZ", "a=b", "1&1", "true"]);
  const dup = rng.chance(0.2) ? `&${name}=2` : "";
  return { qs: `?${name}=${v}${dup}`, what: `query ${name}=${v.slice(0, 20)}${dup}` };
}

/** Tokens to send: `victim` is the one used where success revokes it (logout, password change), so `user` stays valid. */
export interface Tokens {
  user?: string;
  admin?: string;
  victim?: string;
}

/** Routes and methods whose success revokes the caller's sessions. */
export const REVOKING = /logout|password|sessions\/\{|DeleteSession|DeleteAccount|RevokeUserSessions/i;

export function restCases(count: number, rng: Rng, tokens: Tokens): FuzzRequest[] {
  const out: FuzzRequest[] = [];
  for (let i = 0; i < count; i++) {
    const op = OPERATIONS[i % OPERATIONS.length];
    const token = !op.secured || !rng.chance(0.8) ? undefined : REVOKING.test(op.template) ? tokens.victim : op.method === "GET" && rng.chance(0.3) ? tokens.admin : tokens.user;
    let path = op.template.replace(/\{([^}]+)\}/g, () => (rng.chance(0.5) ? rng.uuid() : "fuzz-id"));
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    let method = op.method;
    let body: Buffer | undefined;
    const whats: string[] = [];
    let mayReset = false;
    const base = op.body ? (sample(op.body, rng) as Record<string, unknown>) : {};
    if (op.method !== "GET" && op.method !== "DELETE") {
      body = Buffer.from(JSON.stringify(base));
      headers["content-type"] = "application/json";
    }
    // One to three breakages.
    for (let k = 1 + rng.int(3); k > 0; k--) {
      switch (rng.int(6)) {
        case 0: {
          const b = brokenBody(base, rng);
          body = b.body;
          headers["content-type"] ??= "application/json";
          whats.push(b.what);
          break;
        }
        case 1:
          if (op.template.includes("{")) {
            const v = rng.pick(BAD_PATH_PARAMS);
            path = op.template.replace(/\{([^}]+)\}/, v);
            whats.push(`path param "${v.slice(0, 20)}"`);
          } else {
            const suffix = rng.pick(["/", "//", "/x", ":cancel", "%00", "/..", ".json", "?", "#x", ";a=b"]);
            path += suffix;
            whats.push(`path suffix ${suffix}`);
          }
          break;
        case 2: {
          const q = queryString(op, rng);
          path += path.includes("?") ? "&" + q.qs.slice(1) : q.qs;
          whats.push(q.what);
          break;
        }
        case 3: {
          const ct = rng.pick(CONTENT_TYPES);
          headers["content-type"] = ct;
          body ??= Buffer.from(JSON.stringify(base));
          whats.push(`content-type "${ct}"`);
          break;
        }
        case 4: {
          const h = brokenHeaders(rng, token);
          Object.assign(headers, h.headers);
          whats.push(h.what);
          mayReset ||= Boolean(h.mayReset);
          break;
        }
        default:
          method = rng.pick(["PUT", "PATCH", "DELETE", "POST", "GET", "OPTIONS", "TRACE", "FOO"]);
          whats.push(`method ${method}`);
      }
    }
    out.push({ proto: "rest", method, path, headers, body, what: whats.join("; "), mayReset });
  }
  return out;
}
