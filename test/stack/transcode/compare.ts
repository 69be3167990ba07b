// Comparing the answers of test/stack/transcode.test.ts: what legitimately differs
// between two deployments (ids, tokens, times) is learnt as a bijection and normalised.
import type { EdgeState } from "./requests.js";
import { type Answer } from "../../edge/conformance/target.js";
// ---------------------------------------------------------------------------
// Comparing two answers

export type VolatileClass = "jwt" | "uuid" | "time" | "short" | "opaque";
/**
 * Volatile values inside a string: JWTs, UUIDs, RFC 3339 times, TOTP secrets in otpauth URIs
 * (`secret=`), and short ids: 8 hex digits
 * standing alone, as the first 8 of a UUID are shown to people ("Order 0b498607 received",
 * the subject of an order mail). A short id is masked as the id it abbreviates when that id
 * is known on its side (`<owner3.orderId[:8]>`), else by a bijection of its own; never
 * inside a UUID or a longer word or number.
 */
export const VOLATILE = /(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))|((?<![0-9A-Za-z_-])[0-9a-f]{8}(?![0-9A-Za-z_-]))|((?<=[?&]secret=)[A-Z2-7]{16,})/gi;
/** A QR code (an SVG document): it draws a secret, so it is as volatile as the secret. */
const SVG = /^<svg[\s>]/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A whole string that is an opaque credential or cursor: base64url, 20+ characters, or such parts joined by dots (signed page tokens). */
export const OPAQUE = /^[A-Za-z0-9_-]{20,}={0,2}(\.[A-Za-z0-9_-]{10,}={0,2})*$/;

export interface Piece {
  literal: string;
  cls?: VolatileClass;
}

export function pieces(s: string): Piece[] {
  if ((OPAQUE.test(s) && !/^[a-z_]+$/i.test(s)) || SVG.test(s)) return [{ literal: s, cls: "opaque" }];
  const out: Piece[] = [];
  let at = 0;
  for (const m of s.matchAll(VOLATILE)) {
    if (m.index! > at) out.push({ literal: s.slice(at, m.index) });
    out.push({ literal: m[0], cls: m[1] ? "jwt" : m[2] ? "uuid" : m[3] ? "time" : m[5] ? "opaque" : "short" });
    at = m.index! + m[0].length;
  }
  if (at < s.length) out.push({ literal: s.slice(at) });
  return out;
}

/** A one-to-one correspondence between the two edges' volatile values, with display labels. */
export class Pairing {
  private readonly a = new Map<string, string>();
  private readonly b = new Map<string, string>();
  private n = 0;

  seed(label: string, a: string, b: string) {
    this.a.set(a, label);
    this.b.set(b, label);
    this.abbreviations(label, a, b);
  }

  learn(cls: VolatileClass, a: string, b: string) {
    if (cls === "time" || this.a.has(a) || this.b.has(b)) return;
    const label = `<${cls}#${++this.n}>`;
    this.a.set(a, label);
    this.b.set(b, label);
    this.abbreviations(label, a, b);
  }

  /** A pair of UUIDs also pairs their short ids (the first 8 hex digits), labelled after them. */
  private abbreviations(label: string, a: string, b: string) {
    if (!UUID.test(a) || !UUID.test(b)) return;
    const short = label.replace(/>$/, "[:8]>");
    this.a.set(a.slice(0, 8), short);
    this.b.set(b.slice(0, 8), short);
  }

  label(side: "a" | "b", p: Piece): string {
    if (!p.cls) return p.literal;
    if (p.cls === "time") return "<time>";
    return (side === "a" ? this.a : this.b).get(p.literal) ?? `<${p.cls}?>`;
  }
}

/** Learn pairs where both answers have volatile values at the same place. */
export function learn(pairing: Pairing, a: unknown, b: unknown): void {
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

export function render(pairing: Pairing, side: "a" | "b", v: unknown): unknown {
  if (typeof v === "string") return pieces(v).map((p) => pairing.label(side, p)).join("");
  if (Array.isArray(v)) return v.map((x) => render(pairing, side, x));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(pairing, side, x)]));
  return v;
}

/** The headers compared (others differ by deployment: x-request-id, date, server, rate-limit counters, envoy's own). */
export const COMPARED_HEADERS = ["content-type", "cache-control", "www-authenticate", "allow"];

export interface Seen {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export function normalisedText(e: EdgeState, text: string): string {
  let out = text.split(e.sfx).join("<sfx>").split(e.t.url).join("<base-url>");
  if (e.t.admin) out = out.split(e.t.admin.email).join("<admin-email>");
  return out;
}

/**
 * Numbers a clock measured (how long an SMTP attempt took, acme.notification.v1.DeliveryAttempt):
 * they differ from run to run like times do, and are omitted when 0 (proto3 JSON), so they are
 * left out of the comparison altogether.
 */
export const MEASURED_FIELDS: readonly string[] = ["durationMs"];

function withoutMeasured(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutMeasured);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).filter(([k, x]) => !(MEASURED_FIELDS.includes(k) && typeof x === "number")).map(([k, x]) => [k, withoutMeasured(x)]));
  }
  return v;
}

export function seen(e: EdgeState, a: Answer): { raw: Seen } {
  const headers: Record<string, string> = {};
  for (const h of COMPARED_HEADERS) {
    const v = a.headers.get(h);
    if (v !== null) headers[h] = normalisedText(e, h === "content-type" ? v.toLowerCase().replace(/\s+/g, "") : v);
  }
  const text = normalisedText(e, a.text);
  let body: unknown = text;
  if (a.json !== undefined) body = withoutMeasured(JSON.parse(text));
  return { raw: { status: a.status, headers, body } };
}

