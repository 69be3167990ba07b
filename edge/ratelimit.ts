// Global rate limits exactly as envoyproxy/ratelimit computes them, from the
// same config file (envoy/ratelimit/config.yaml, RATELIMIT_CONFIG) and with
// the same counters, so the embedded edge and Envoy + ratelimit agree:
// - a descriptor (list of key/value entries) finds its limit by walking the
//   config tree: "key_value" first, then "key" alone (one counter per value);
// - fixed windows: key = prefix + domain + "_" + (key "_" value "_")... +
//   window start, window start = floor(now / unit) * unit;
// - INCRBY 1 (expiring after one unit when new), over limit when the count
//   after the increment exceeds requests_per_unit (request N+1 is the first
//   refused); every descriptor of the request is counted;
// - the answer carries, per descriptor, the limit, the remaining count and
//   the seconds until the window resets, from which the x-ratelimit-*
//   headers are built like Envoy's ratelimit filter (DRAFT_VERSION_03).
import { metrics, METRIC } from "../platform/telemetry/metrics.js";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { KeyValueStore } from "../platform/kv.js";

export const DOMAIN = "acme";

const UNIT_SECONDS: Record<string, number> = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  week: 604800,
  month: 2592000,
  year: 31536000,
};

export interface RateLimit {
  readonly unit: string;
  readonly unitSeconds: number;
  readonly requestsPerUnit: number;
  readonly unlimited: boolean;
  readonly name?: string;
}

interface ConfigNode {
  readonly limit?: RateLimit;
  readonly shadowMode: boolean;
  readonly children: ReadonlyMap<string, ConfigNode>;
}

export interface RateLimitConfig {
  readonly domain: string;
  readonly root: ReadonlyMap<string, ConfigNode>;
}

export class RateLimitConfigError extends Error {}

const DESCRIPTOR_KEYS = new Set(["key", "value", "rate_limit", "descriptors", "shadow_mode", "detailed_metric"]);
const LIMIT_KEYS = new Set(["unit", "requests_per_unit", "unlimited", "name", "replaces"]);

function parseDescriptors(list: unknown, where: string): Map<string, ConfigNode> {
  const out = new Map<string, ConfigNode>();
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) throw new RateLimitConfigError(`${where}: descriptors must be a list`);
  for (const [i, d] of list.entries()) {
    const at = `${where}.descriptors[${i}]`;
    if (typeof d !== "object" || d === null) throw new RateLimitConfigError(`${at}: must be a map`);
    for (const k of Object.keys(d)) if (!DESCRIPTOR_KEYS.has(k)) throw new RateLimitConfigError(`${at}: unknown key "${k}"`);
    const { key, value, rate_limit: rl, descriptors, shadow_mode: shadow } = d as Record<string, unknown>;
    if (typeof key !== "string" || !key) throw new RateLimitConfigError(`${at}: key must be a non-empty string`);
    if (value !== undefined && typeof value !== "string") throw new RateLimitConfigError(`${at}: value must be a string`);
    const mapKey = value ? `${key}_${value}` : key;
    if (out.has(mapKey)) throw new RateLimitConfigError(`${at}: duplicate descriptor "${mapKey}"`);
    let limit: RateLimit | undefined;
    if (rl !== undefined) {
      if (typeof rl !== "object" || rl === null) throw new RateLimitConfigError(`${at}.rate_limit: must be a map`);
      for (const k of Object.keys(rl)) if (!LIMIT_KEYS.has(k)) throw new RateLimitConfigError(`${at}.rate_limit: unknown key "${k}"`);
      const r = rl as Record<string, unknown>;
      const unlimited = r.unlimited === true;
      const unit = String(r.unit ?? "").toLowerCase();
      const rpu = r.requests_per_unit;
      if (!unlimited) {
        if (!(unit in UNIT_SECONDS)) throw new RateLimitConfigError(`${at}.rate_limit: invalid unit "${String(r.unit)}"`);
        if (typeof rpu !== "number" || !Number.isInteger(rpu) || rpu < 0) {
          throw new RateLimitConfigError(`${at}.rate_limit: requests_per_unit must be a non-negative integer`);
        }
      }
      limit = {
        unit,
        unitSeconds: UNIT_SECONDS[unit] ?? 0,
        requestsPerUnit: typeof rpu === "number" ? rpu : 0,
        unlimited,
        name: typeof r.name === "string" ? r.name : undefined,
      };
    }
    out.set(mapKey, { limit, shadowMode: shadow === true, children: parseDescriptors(descriptors, at) });
  }
  return out;
}

export function parseRateLimitConfig(text: string, source = "ratelimit config"): RateLimitConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RateLimitConfigError(`${source}: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null) throw new RateLimitConfigError(`${source}: not a map`);
  const { domain, descriptors } = doc as Record<string, unknown>;
  if (typeof domain !== "string" || !domain) throw new RateLimitConfigError(`${source}: domain is required`);
  return { domain, root: parseDescriptors(descriptors, source) };
}

export function loadRateLimitConfig(path: string): RateLimitConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RateLimitConfigError(`cannot read RATELIMIT_CONFIG ${path}: ${(err as Error).message}`);
  }
  const config = parseRateLimitConfig(text, path);
  if (config.domain !== DOMAIN) {
    throw new RateLimitConfigError(`${path}: domain is "${config.domain}", the edges send descriptors for "${DOMAIN}"`);
  }
  return config;
}

export type Entry = readonly [key: string, value: string];
export type Descriptor = readonly Entry[];

/** The limit of a descriptor (envoyproxy/ratelimit's GetLimit), or undefined. */
export function findLimit(config: RateLimitConfig, descriptor: Descriptor): { limit: RateLimit; shadowMode: boolean } | undefined {
  let nodes = config.root;
  let found: { limit: RateLimit; shadowMode: boolean } | undefined;
  for (const [i, [key, value]] of descriptor.entries()) {
    const next = nodes.get(`${key}_${value}`) ?? nodes.get(key);
    if (next?.limit && i === descriptor.length - 1) found = { limit: next.limit, shadowMode: next.shadowMode };
    if (next && next.children.size > 0) nodes = next.children;
    else break;
  }
  return found;
}

/** The counter key of a descriptor in a window (no trailing unit; as envoyproxy/ratelimit). */
export function cacheKey(prefix: string, domain: string, descriptor: Descriptor, unitSeconds: number, nowSeconds: number): string {
  let key = `${prefix}${domain}_`;
  for (const [k, v] of descriptor) key += `${k}_${v}_`;
  return key + String(Math.floor(nowSeconds / unitSeconds) * unitSeconds);
}

export interface DescriptorStatus {
  readonly descriptor: Descriptor;
  readonly limit?: RateLimit;
  readonly overLimit: boolean;
  readonly remaining: number;
  /** Seconds until the window resets. */
  readonly resetSeconds: number;
}

export interface Decision {
  readonly overLimit: boolean;
  readonly statuses: readonly DescriptorStatus[];
  /** x-ratelimit-* (and on refusal retry-after, x-envoy-ratelimited) response headers. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface RateLimiterOptions {
  config: RateLimitConfig;
  kv: KeyValueStore;
  /** CACHE_KEY_PREFIX of envoyproxy/ratelimit (default ""). */
  prefix?: string;
  /** Seconds since the epoch. */
  now?: () => number;
  /** Counting failed (store down): the request is allowed, as Envoy's failure_mode_deny: false. */
  onError?: (err: unknown) => void;
}

export interface RateLimiter {
  check(descriptors: readonly Descriptor[]): Promise<Decision>;
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const prefix = opts.prefix ?? "";
  const now = opts.now ?? (() => Date.now() / 1000);
  return {
    async check(descriptors) {
      const t = Math.floor(now());
      // Every counted descriptor in one store round trip.
      const limits = descriptors.map((descriptor) => {
        const found = findLimit(opts.config, descriptor);
        return found && !found.limit.unlimited ? found : undefined;
      });
      const counted = limits.flatMap((found, i) =>
        found ? [[cacheKey(prefix, opts.config.domain, descriptors[i], found.limit.unitSeconds, t), found.limit.unitSeconds * 1000] as const] : [],
      );
      let counts: number[];
      try {
        counts = await opts.kv.incrEach(counted);
      } catch (err) {
        opts.onError?.(err);
        return { overLimit: false, statuses: [], headers: {} };
      }
      let next = 0; // counts are in the order of the counted descriptors
      const statuses = descriptors.map((descriptor, i): DescriptorStatus => {
        const found = limits[i];
        if (!found) return { descriptor, overLimit: false, remaining: 0, resetSeconds: 0 };
        const { limit } = found;
        const count = counts[next++];
        const over = count > limit.requestsPerUnit && !found.shadowMode;
        return {
          descriptor,
          limit,
          overLimit: over,
          remaining: over ? 0 : Math.max(0, limit.requestsPerUnit - count),
          resetSeconds: limit.unitSeconds - (t % limit.unitSeconds),
        };
      });
      const overLimit = statuses.some((s) => s.overLimit);
      for (const s of statuses) {
        if (s.overLimit) metrics.counter(METRIC.rateLimitRejections, { source: "edge", descriptor: s.descriptor.map(([k]) => k).join(".") });
      }
      return { overLimit, statuses, headers: rateLimitHeaders(statuses, overLimit) };
    },
  };
}

/**
 * Envoy's XRateLimitHeaderUtils (DRAFT_VERSION_03): the descriptor with the
 * fewest remaining requests gives limit, remaining and reset; the limit header
 * lists every limit as a quota policy: "3, 20;w=1, 3;w=1, 100;w=60".
 * On refusal: retry-after (seconds until the refusing window resets; Envoy
 * itself does not send it) and x-envoy-ratelimited: true.
 */
export function rateLimitHeaders(statuses: readonly DescriptorStatus[], overLimit: boolean): Record<string, string> {
  let min: DescriptorStatus | undefined;
  let policy = "";
  for (const s of statuses) {
    if (!s.limit) continue;
    if (!min || s.remaining < min.remaining) min = s;
    policy += `, ${s.limit.requestsPerUnit};w=${s.limit.unitSeconds}`;
    if (s.limit.name) policy += `;name="${s.limit.name}"`;
  }
  if (!min?.limit) return {};
  const headers: Record<string, string> = {
    "x-ratelimit-limit": `${min.limit.requestsPerUnit}${policy}`,
    "x-ratelimit-remaining": String(min.remaining),
    "x-ratelimit-reset": String(min.resetSeconds),
  };
  if (overLimit) {
    headers["retry-after"] = String(Math.max(...statuses.filter((s) => s.overLimit).map((s) => s.resetSeconds)));
    headers["x-envoy-ratelimited"] = "true";
  }
  return headers;
}

/** The descriptors both edges send for a routed request (see envoy/ratelimit/config.yaml). */
export function descriptorsFor(clientIp: string, subject: string | undefined, rateClass: string): Descriptor[] {
  const out: Descriptor[] = [[["remote_address", clientIp]]];
  if (subject) out.push([["user_per_second", subject]], [["user_per_minute", subject]]);
  if (rateClass && rateClass !== "default") out.push([["rate_class", rateClass], ["remote_address", clientIp]]);
  return out;
}
