// Cursor (keyset) pagination with opaque, tamper-evident page tokens (AIP-158).
//
// A page token carries the (created_at, id) of the last row returned and an
// HMAC over it and the list's "scope" (the filters and caller the list was
// made for). A token that was edited, truncated, made up, or replayed with
// different filters is INVALID_ARGUMENT on "pageToken". Keyset pages never
// skip or repeat rows that existed when the listing started, however many
// rows are inserted between pages. created_at travels with microsecond
// precision (JS Date would truncate to ms and make ties ambiguous).
//
//   const secret = pageTokenSecret(ctx.config.env, ctx.secrets.keyEncryptionKey);
//   const tokens = new PageTokens(pageTokenKey(secret, "orders"));
//   const after = tokens.decode(req.pageToken, scope);
//   rows = ... .where(keysetWhere("created_at", "id", after, "desc")).limit(size + 1) ...
//   return nextPage(rows, size, (r) => ({ ts: r.cursor_ts, id: r.id }), (c) => tokens.encode(c, scope));
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { sql, type RawBuilder } from "kysely";
import { ConfigError } from "./config.js";
import { invalidArgument } from "./errors.js";
import { UUID_RE } from "./validate.js";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
/** Longer tokens are refused before any decoding. */
const MAX_TOKEN_CHARS = 512;
const MAC_BYTES = 16;
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** Position after which the next page starts. */
export interface Keyset {
  /** created_at as rendered by `cursorTs` (UTC, microseconds): "2024-05-01T10:00:00.123456Z". */
  ts: string;
  id: string;
}

/** AIP-158 page size: 0 -> default, above the maximum -> the maximum, negative -> INVALID_ARGUMENT. */
export function pageSize(value: number, opts: { def?: number; max?: number; field?: string } = {}): number {
  if (!Number.isInteger(value) || value < 0) throw invalidArgument([{ field: opts.field ?? "pageSize", description: "must not be negative" }]);
  if (value === 0) return opts.def ?? DEFAULT_PAGE_SIZE;
  return Math.min(value, opts.max ?? MAX_PAGE_SIZE);
}

/** A page-token MAC key for one purpose, derived from a long-lived secret (HKDF-SHA256). */
export function pageTokenKey(secret: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "acme-page-token", purpose, 32));
}

/**
 * The secret page-token keys derive from: PAGE_TOKEN_SECRET (>= 32 characters)
 * when set, so every replica of a service accepts every other's tokens,
 * otherwise the process's key-encryption key (stable per data dir).
 */
export function pageTokenSecret(env: Record<string, string | undefined>, fallback: Buffer): Buffer {
  const v = env.PAGE_TOKEN_SECRET;
  if (v === undefined || v === "") return fallback;
  if (v.length < 32) throw new ConfigError("PAGE_TOKEN_SECRET", "must be at least 32 characters");
  return Buffer.from(v, "utf8");
}

export class PageTokens {
  constructor(private readonly key: Buffer) {
    if (key.length < 16) throw new Error("page token key too short");
  }

  private mac(scope: string, payload: string): Buffer {
    return createHmac("sha256", this.key).update(scope).update("\0").update(payload).digest().subarray(0, MAC_BYTES);
  }

  encode(cursor: Keyset, scope: string): string {
    const payload = Buffer.from(JSON.stringify([1, cursor.ts, cursor.id])).toString("base64url");
    return `${payload}.${this.mac(scope, payload).toString("base64url")}`;
  }

  /** The cursor of a token issued for this scope; undefined for "" (first page). */
  decode(token: string, scope: string, field = "pageToken"): Keyset | undefined {
    if (token === "") return undefined;
    const bad = () => invalidArgument([{ field, description: "is not a valid page token for this request" }]);
    if (token.length > MAX_TOKEN_CHARS) throw bad();
    const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
    if (!m) throw bad();
    const given = Buffer.from(m[2], "base64url");
    const want = this.mac(scope, m[1]);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw bad();
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(m[1], "base64url").toString("utf8"));
    } catch {
      throw bad();
    }
    if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== 1) throw bad();
    const [, ts, id] = parsed as [number, unknown, unknown];
    if (typeof ts !== "string" || !TS_RE.test(ts) || typeof id !== "string" || !UUID_RE.test(id)) throw bad();
    return { ts, id };
  }
}

/** SQL rendering a timestamptz column exactly (UTC, microseconds) for a cursor. */
export function cursorTs(column: string): RawBuilder<string> {
  return sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * The keyset condition "rows after the cursor" for ORDER BY (tsColumn, idColumn)
 * ascending, or both descending. Uses a row comparison, so an index on
 * (..., tsColumn, idColumn) serves it. Always true without a cursor.
 */
export function keysetWhere(tsColumn: string, idColumn: string, after: Keyset | undefined, dir: "asc" | "desc"): RawBuilder<boolean> {
  if (!after) return sql<boolean>`true`;
  const op = sql.raw(dir === "asc" ? ">" : "<");
  return sql<boolean>`(${sql.ref(tsColumn)}, ${sql.ref(idColumn)}) ${op} (${after.ts}::timestamptz, ${after.id}::uuid)`;
}

/**
 * Given up to size + 1 rows in page order, the page and the token of the
 * next one ("" on the last page).
 */
export function nextPage<R>(rows: R[], size: number, cursorOf: (row: R) => Keyset, encode: (c: Keyset) => string): { items: R[]; nextPageToken: string } {
  if (rows.length <= size) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, size);
  return { items, nextPageToken: encode(cursorOf(items[items.length - 1])) };
}
