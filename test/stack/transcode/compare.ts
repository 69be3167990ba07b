// Comparing the answers of test/stack/transcode.test.ts: what legitimately differs
// between two deployments (ids, tokens, times) is learnt as a bijection and normalised.
import type { EdgeState } from "./requests.js";
import { type Answer } from "../../edge/conformance/target.js";
// ---------------------------------------------------------------------------
// Comparing two answers

export type VolatileClass = "jwt" | "uuid" | "time" | "opaque";
export const VOLATILE = /(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))/gi;
/** A whole string that is an opaque credential or cursor: base64url, 20+ characters, or such parts joined by dots (signed page tokens). */
export const OPAQUE = /^[A-Za-z0-9_-]{20,}={0,2}(\.[A-Za-z0-9_-]{10,}={0,2})*$/;

export interface Piece {
  literal: string;
  cls?: VolatileClass;
}

export function pieces(s: string): Piece[] {
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
export class Pairing {
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

export function seen(e: EdgeState, a: Answer): { raw: Seen } {
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

