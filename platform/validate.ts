// Request validation that names every offending field: collect violations
// with a Validator, then `done()` throws one INVALID_ARGUMENT carrying a
// google.rpc.BadRequest with a FieldViolation per bad field (lowerCamelCase
// path, e.g. "unitPriceCents", "order.status"). Nothing is logged here.
//
//   const v = new Validator();
//   v.text("product", req.product, { max: 200 });
//   v.int("quantity", req.quantity, { min: 1, max: 1000 });
//   v.done();
import { ScalarType, type DescEnum, type DescMessage, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectList, type ReflectMap, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { Interceptor } from "@connectrpc/connect";
import type { FieldMask } from "@bufbuild/protobuf/wkt";
import { invalidArgument, type FieldViolation } from "./errors.js";

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Control characters (C0, DEL, C1) and lone surrogates. NUL cannot be stored in
// a Postgres text column at all; the others have no place in names or keys.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Length in Unicode code points (what a person calls "characters"), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export interface TextRules {
  /** Minimum characters (default 1: required). Whitespace-only counts as empty. */
  min?: number;
  max: number;
  /** Extra format check, with the description used when it fails. */
  pattern?: RegExp;
  patternDescription?: string;
}

export class Validator {
  private readonly list: FieldViolation[] = [];

  /** Record a violation for a field. */
  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  /** True when the field already has a violation (to skip dependent checks). */
  has(field: string): boolean {
    return this.list.some((v) => v.field === field);
  }

  get violations(): readonly FieldViolation[] {
    return this.list;
  }

  /** Free text: required unless min is 0, bounded length, no control characters. */
  text(field: string, value: string, rules: TextRules): this {
    const min = rules.min ?? 1;
    if (value.trim() === "") {
      if (min > 0) this.add(field, "is required");
      return this;
    }
    const len = charLength(value);
    if (len < min) return this.add(field, `must be at least ${min} characters`);
    if (len > rules.max) return this.add(field, `must be at most ${rules.max} characters`);
    if (CONTROL.test(value) || LONE_SURROGATE.test(value)) return this.add(field, "must not contain control characters");
    if (rules.pattern && !rules.pattern.test(value)) return this.add(field, rules.patternDescription ?? "has an invalid format");
    return this;
  }

  /** A required UUID (ids): empty -> "is required", anything else malformed -> "must be a UUID". */
  uuid(field: string, value: string, opts: { optional?: boolean } = {}): this {
    if (value === "") return opts.optional ? this : this.add(field, "is required");
    if (!UUID_RE.test(value)) this.add(field, "must be a UUID");
    return this;
  }

  /** An integer within [min, max] (int32 fields arrive as numbers). */
  int(field: string, value: number, range: { min: number; max: number }): this {
    if (!Number.isInteger(value)) return this.add(field, "must be an integer");
    if (value < range.min) return this.add(field, range.min === 0 ? "must not be negative" : `must be at least ${range.min}`);
    if (value > range.max) return this.add(field, `must be at most ${range.max}`);
    return this;
  }

  /** An int64 within [min, max] (int64 fields arrive as bigint). */
  bigint(field: string, value: bigint, range: { min: bigint; max: bigint }): this {
    if (value < range.min) return this.add(field, range.min === 0n ? "must not be negative" : `must be at least ${range.min}`);
    if (value > range.max) return this.add(field, `must be at most ${range.max}`);
    return this;
  }

  /**
   * A known value of a proto enum. Proto3 enums are open: an unknown number
   * decodes fine and must be refused here. UNSPECIFIED (0) is refused unless
   * `allowUnspecified` (e.g. an optional filter).
   */
  enumValue(field: string, value: number, desc: DescEnum, opts: { allowUnspecified?: boolean } = {}): this {
    if (value === 0) return opts.allowUnspecified ? this : this.add(field, "is required");
    if (!desc.values.some((v) => v.number === value)) this.add(field, "is not a known value");
    return this;
  }

  /** One of a fixed set of strings. */
  oneOf(field: string, value: string, allowed: readonly string[]): this {
    if (value === "") return this.add(field, "is required");
    if (!allowed.includes(value)) this.add(field, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
    return this;
  }

  /** Throw INVALID_ARGUMENT naming every bad field, if any. */
  done(): void {
    if (this.list.length) throw invalidArgument([...this.list]);
  }
}

/** Throw INVALID_ARGUMENT for one field at once. */
export function badField(field: string, description: string): never {
  throw invalidArgument([{ field, description }]);
}

export interface MaskRules<P extends string> {
  /** Paths (proto field names) the caller may update. */
  updatable: readonly P[];
  /** Every field name of the resource (to tell "unknown" from "cannot be updated"). */
  known: readonly string[];
  /** Updatable fields that are populated in the request (used when the mask is empty). */
  populated: readonly P[];
  /** Request field holding the mask (default "updateMask"). */
  field?: string;
}

/**
 * The paths to update per AIP-134. An explicit mask must name only updatable
 * fields ("*" means all of them); an unknown or non-updatable path is
 * INVALID_ARGUMENT. An empty (or absent) mask means every updatable field
 * that is populated; other populated fields are ignored (output only or
 * immutable here, AIP-203), and nothing updatable populated is INVALID_ARGUMENT.
 * Paths are accepted in proto (snake_case) or JSON (lowerCamelCase) spelling.
 */
export function updatePaths<P extends string>(mask: FieldMask | undefined, rules: MaskRules<P>): P[] {
  const field = rules.field ?? "updateMask";
  const paths = mask?.paths ?? [];
  if (paths.length === 0) {
    if (rules.populated.length === 0) badField(field, `no updatable field is set (updatable: ${rules.updatable.join(", ")})`);
    return [...new Set(rules.populated)];
  }
  const v = new Validator();
  const out = new Set<P>();
  const snake = (p: string) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  for (const raw of paths) {
    if (raw === "*") {
      rules.updatable.forEach((p) => out.add(p));
      continue;
    }
    const p = snake(raw);
    if ((rules.updatable as readonly string[]).includes(p)) out.add(p as P);
    else if (rules.known.includes(p)) v.add(field, `field "${raw.slice(0, 64)}" cannot be updated`);
    else v.add(field, `unknown field "${raw.slice(0, 64)}"`);
  }
  v.done();
  return [...out];
}

// Text hygiene of every request, once for all methods: a string field holding a C0
// control character other than tab, line feed and carriage return (NUL above all:
// Postgres refuses it in text), DEL, or a lone surrogate is INVALID_ARGUMENT naming
// the field ("user.name", "tags[2]", "labels[k]"). Tab and line breaks pass here
// because a multi-line field may hold them; single-line fields refuse them too,
// through Validator.text (every control character).
// eslint-disable-next-line no-control-regex
const HOSTILE_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function textProblem(s: string): string | undefined {
  if (HOSTILE_TEXT.test(s)) return "must not contain control characters";
  if (LONE_SURROGATE.test(s)) return "must be valid Unicode text";
  return undefined;
}

/** Every string field of `message` (nested messages, lists and maps included) with a problem. */
export function textViolations(desc: DescMessage, message: Message, max = 20): FieldViolation[] {
  const out: FieldViolation[] = [];
  const check = (field: string, value: unknown) => {
    if (typeof value !== "string" || out.length >= max) return;
    const problem = textProblem(value);
    if (problem) out.push({ field, description: problem });
  };
  const walk = (m: ReflectMessage, prefix: string, depth: number) => {
    if (depth > 32) return;
    for (const f of m.fields) {
      if (!m.isSet(f)) continue;
      const name = prefix + f.jsonName;
      if (f.fieldKind === "scalar") {
        if (f.scalar === ScalarType.STRING) check(name, m.get(f));
      } else if (f.fieldKind === "message") {
        walk(m.get(f) as ReflectMessage, `${name}.`, depth + 1);
      } else if (f.fieldKind === "list") {
        const list = m.get(f) as ReflectList;
        let i = 0;
        for (const v of list) {
          if (f.listKind === "scalar" && f.scalar === ScalarType.STRING) check(`${name}[${i}]`, v);
          else if (f.listKind === "message") walk(v as ReflectMessage, `${name}[${i}].`, depth + 1);
          i++;
        }
      } else if (f.fieldKind === "map") {
        const map = m.get(f) as ReflectMap;
        for (const [k, v] of map) {
          const key = String(k);
          const at = `${name}[${key.replace(/[^\x20-\x7e]/g, "?").slice(0, 64)}]`;
          if (typeof k === "string") check(at, k);
          if (f.mapKind === "scalar" && f.scalar === ScalarType.STRING) check(at, v);
          else if (f.mapKind === "message") walk(v as ReflectMessage, `${at}.`, depth + 1);
        }
      }
    }
  };
  walk(reflect(desc, message), "", 0);
  return out;
}

/** Server interceptor: refuses a unary request with hostile text in any string field (above). */
export const textHygiene: Interceptor = (next) => (req) => {
  if (!req.stream) {
    const violations = textViolations(req.method.input, req.message as Message);
    if (violations.length) throw invalidArgument(violations);
  }
  return next(req);
};
