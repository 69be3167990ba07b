// What a hostile client must never see, whatever it sent: a 5xx (or a gRPC
// INTERNAL, UNKNOWN, UNAVAILABLE, DATA_LOSS), a stack trace or an internal
// message, an error body of another shape than the one the edges promise, or no
// answer at all. judge() lists the problems of one answer; report() groups them
// with a reproducer each.
import type { FuzzRequest } from "./rest-cases.js";
import type { FuzzAnswer } from "./send.js";

export interface Finding {
  kind: "5xx" | "internal text" | "error shape" | "no answer";
  detail: string;
  req: FuzzRequest;
  res: FuzzAnswer;
}

/** Text that only the product's insides write: stack frames, paths, error classes, driver and SQL messages. */
export const INTERNAL_TEXT: RegExp[] = [
  /\bat (?:async )?\S+ \(.*:\d+:\d+\)/, /\bat \/.*:\d+:\d+/, /node_modules/, /\.(?:ts|js|mjs|cjs):\d+/, /\b(?:Type|Reference|Syntax|Range|Internal|Aggregate)Error\b/,
  /\bError: /, /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/, /Cannot read propert|is not a function|is not defined|Maximum call stack/i,
  /invalid input syntax for|violates .* constraint|syntax error at or near|relation "|column "|duplicate key value|\bSQLSTATE\b|\bpostgres\b|\bpglite\b|\bkysely\b|\bioredis\b/i,
  /\[object Object\]/, /\bundefined\b/,
  // Envoy's own texts about its insides.
  /internal buffer|upstream connect error|reset reason|no healthy upstream|delayed connect error|filter_chain|envoy\./i,
];

const FAILING_GRPC = new Set(["2", "13", "14", "15"]); // UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS
const CONNECT_CODES = new Set(["canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"]);

function leaks(text: string): string | undefined {
  const hit = INTERNAL_TEXT.find((re) => re.test(text));
  return hit && `${hit}: ${text.slice(0, 300)}`;
}

const parse = (b: Buffer): any => {
  try {
    return JSON.parse(b.toString("utf8"));
  } catch {
    return undefined;
  }
};

/** The REST error body: exactly {"code": number, "message": string} plus "details" (array) from a service. */
function restShape(res: FuzzAnswer): string | undefined {
  if (!/^application\/json/.test(res.headers["content-type"] ?? "")) return `content-type ${res.headers["content-type"] ?? "(none)"}`;
  const j = parse(res.body);
  if (!j || typeof j !== "object" || Array.isArray(j)) return "not a JSON object";
  const extra = Object.keys(j).filter((k) => !["code", "message", "details"].includes(k));
  if (extra.length) return `extra keys ${extra.join(",")}`;
  if (typeof j.code !== "number" || typeof j.message !== "string" || !j.message) return "code must be a number and message a non-empty string";
  if (j.details !== undefined && !Array.isArray(j.details)) return "details must be an array";
}

/** The Connect protocol's error body: {"code": "<snake_case code>", "message"?, "details"?}. */
function connectShape(res: FuzzAnswer): string | undefined {
  const j = parse(res.body);
  if (!/^application\/json/.test(res.headers["content-type"] ?? "") || !j || typeof j !== "object") return `not a Connect JSON error (content-type ${res.headers["content-type"] ?? "(none)"})`;
  const extra = Object.keys(j).filter((k) => !["code", "message", "details"].includes(k));
  if (extra.length || !CONNECT_CODES.has(j.code)) return `not the Connect error shape`;
  if (j.message !== undefined && typeof j.message !== "string") return "message must be a string";
}

export function judge(req: FuzzRequest, res: FuzzAnswer): Finding[] {
  const out: Finding[] = [];
  const add = (kind: Finding["kind"], detail: string) => out.push({ kind, detail, req, res });
  const body = res.body.toString("utf8");
  if (res.error && res.status === undefined) {
    if (!req.mayReset || /no answer within/.test(res.error)) add("no answer", res.error);
    return out;
  }
  const status = res.status ?? 0;
  // UNIMPLEMENTED (501) is the protocols' answer to an encoding the server does not support, a
  // method that does not exist (the internal services are not offered at the edge), or a unary
  // call with no or several messages; a server error otherwise.
  const unimplementedOk = unsupportedEncoding(req) || req.what.startsWith("unknown method") || /InternalService\//.test(req.path) || cardinalityViolation(req);
  if (status >= 500 && !(status === 501 && unimplementedOk)) add("5xx", `HTTP ${status}`);
  const leak = leaks(body) ?? leaks(decodeURIComponentSafe(res.trailers["grpc-message"] ?? res.headers["grpc-message"] ?? ""));
  if (leak) add("internal text", leak);
  // Whatever the protocol: an answer in gRPC's terms (a REST path sent as application/grpc is one) must not be a server error.
  const gs = grpcStatus(res);
  if (gs !== undefined && FAILING_GRPC.has(gs)) add("5xx", `grpc-status ${gs}`);
  if (gs === "12" && !unimplementedOk && req.proto !== "rest") add("5xx", "grpc-status 12 (UNIMPLEMENTED) for an implemented method");
  if (req.proto === "grpc") {
    const grpcType = /^application\/grpc/.test(req.headers["content-type"] ?? "");
    if (gs === undefined && (status === 200 || grpcType && status !== 415)) add("error shape", `HTTP ${status} without grpc-status`);
  } else if (status >= 400 && req.method !== "HEAD") {
    const problem = req.proto === "rest" ? restShape(res) : connectShape(res);
    if (problem) add("error shape", problem);
  }
  return out;
}

/**
 * A unary gRPC request with no message, or with bytes after a whole first message: gRPC's status
 * codes doc prescribes UNIMPLEMENTED for such a cardinality violation. A cut first message is not one.
 */
function cardinalityViolation(req: FuzzRequest): boolean {
  // By content-type: the Connect generator also sends gRPC-framed bodies (application/grpc+proto over HTTP/1.1).
  if (!/^application\/grpc/.test(req.headers["content-type"] ?? "") || !req.body) return false;
  const b = req.body;
  return b.length === 0 || (b.length >= 5 && 5 + b.readUInt32BE(1) < b.length);
}

function unsupportedEncoding(req: FuzzRequest): boolean {
  const e = req.headers["grpc-encoding"] ?? req.headers["content-encoding"];
  return e !== undefined && !["gzip", "br", "identity"].includes(e);
}

/** grpc-status from the trailers, a trailers-only answer, or a gRPC-Web trailer frame in the body. */
export function grpcStatus(res: FuzzAnswer): string | undefined {
  const web = /^application\/grpc-web/.test(res.headers["content-type"] ?? "") ? /grpc-status: ?(\d+)/.exec(res.body.toString("latin1"))?.[1] : undefined;
  return res.trailers["grpc-status"] ?? res.headers["grpc-status"] ?? web;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const clip = (s: string, n = 160) => (s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s);

/** How to send the request again: method, path, headers, body (text, or hex when not UTF-8). */
export function reproducer(req: FuzzRequest): string {
  const entries = Object.entries(req.headers);
  const many = entries.filter(([k]) => k.startsWith("x-fuzz-"));
  const shown = entries.filter(([k]) => !k.startsWith("x-fuzz-")).map(([k, v]) => `${k}: ${clip(v, 60)}`);
  if (many.length) shown.push(`x-fuzz-0..x-fuzz-${many.length - 1}: ${many[0][1].length} x "v" each`);
  const headers = shown.join(" | ");
  const text = req.body?.toString("utf8");
  const body = !req.body ? "(none)" : Buffer.from(text!, "utf8").equals(req.body) && !text!.includes("\0") ? clip(JSON.stringify(text)) : `hex ${clip(req.body.toString("hex"))}`;
  return `${req.proto} ${req.method} ${clip(req.path, 120)} [${headers}] body ${body} (${req.what})`;
}

export function answerLine(res: FuzzAnswer): string {
  const gs = grpcStatus(res);
  const gm = res.trailers["grpc-message"] ?? res.headers["grpc-message"];
  return `${res.status ?? res.error}${gs ? ` grpc-status ${gs}` : ""}${gm ? ` grpc-message ${JSON.stringify(clip(gm, 120))}` : ""} ${res.headers["content-type"] ?? ""} ${JSON.stringify(clip(res.body.toString("utf8"), 200))}`;
}

/** Findings grouped by kind, protocol, route and answer, each group with a count and one reproducer. */
export function report(findings: Finding[]): string {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const answer = answerLine(f.res).replace(/[0-9a-f-]{36}/g, "{uuid}").replace(/\d{3,}/g, "N").slice(0, 140);
    const key = `${f.kind} | ${f.req.proto} | ${f.detail.replace(/: .*/s, "").slice(0, 80)} | answer ${answer}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([key, fs]) => {
      const routes = [...new Set(fs.map((f) => `${f.req.method} ${f.req.path.split("?")[0].replace(/[0-9a-f-]{36}/g, "{id}").slice(0, 50)}`))];
      return `${fs.length}x ${key}\n    on: ${routes.slice(0, 8).join(", ")}${routes.length > 8 ? ` and ${routes.length - 8} more` : ""}\n    e.g. request: ${reproducer(fs[0].req)}\n         answer:  ${answerLine(fs[0].res)}`;
    })
    .join("\n");
}
