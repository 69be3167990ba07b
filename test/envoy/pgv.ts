// The protoc-gen-validate constraints Envoy enforces at load time, read from the
// (validate.rules) / (validate.required) options in Envoy's own descriptors and checked
// on a parsed config. fromJson() checks shape only; this checks e.g. min_len on
// strings, required messages, gt on durations, defined_only on enums, min_items, and
// that no deprecated field or enum value is used. Any messages are unpacked and walked.
import { getOption, toJson, type DescEnum, type DescExtension, type DescField, type DescMessage, type JsonObject, type Message, type Registry } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { anyUnpack, type Any } from "@bufbuild/protobuf/wkt";

type Rules = Record<string, any>;
export interface RuleReport {
  /** "path: rule" for each violated constraint. */
  violations: string[];
  /** How many constraints were evaluated (proves the walk reached the config). */
  checked: number;
  /** Rules present on set fields that this checker does not implement. */
  unchecked: Set<string>;
}

const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const LOOSE_HEADER = /^[^\u0000\u000A\u000D]*$/;

/** Duration JSON ("1.5s") or {seconds, nanos} message -> nanoseconds. */
function nanos(v: unknown): bigint {
  if (typeof v === "string") {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
    if (!m) throw new Error(`bad duration ${v}`);
    const n = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0") || "0");
    return m[1] ? -n : n;
  }
  const d = v as { seconds: bigint; nanos: number };
  return BigInt(d.seconds) * 1_000_000_000n + BigInt(d.nanos);
}

/** const / lt / lte / gt / gte / in / not_in, with PGV's exclusive-range semantics. */
function numeric(v: bigint | number, r: Rules, conv: (x: unknown) => bigint | number, fail: (m: string) => void) {
  const c = (x: unknown) => conv(x);
  if (r.const !== undefined && v !== c(r.const)) fail(`const ${r.const}`);
  if (r.in && !r.in.map(c).includes(v)) fail(`in ${r.in}`);
  if (r.notIn && r.notIn.map(c).includes(v)) fail(`not_in ${r.notIn}`);
  const lo = r.gt !== undefined ? { v: c(r.gt), incl: false } : r.gte !== undefined ? { v: c(r.gte), incl: true } : undefined;
  const hi = r.lt !== undefined ? { v: c(r.lt), incl: false } : r.lte !== undefined ? { v: c(r.lte), incl: true } : undefined;
  const aboveLo = lo && (lo.incl ? v >= lo.v : v > lo.v);
  const belowHi = hi && (hi.incl ? v <= hi.v : v < hi.v);
  if (lo && hi && hi.v < lo.v) {
    if (!aboveLo && !belowHi) fail(`outside ${JSON.stringify(r)}`);
  } else {
    if (lo && !aboveLo) fail(`${lo.incl ? "gte" : "gt"} ${lo.v}`);
    if (hi && !belowHi) fail(`${hi.incl ? "lte" : "lt"} ${hi.v}`);
  }
}

function stringRules(v: string, r: Rules, fail: (m: string) => void, unchecked: Set<string>) {
  if (r.ignoreEmpty && v === "") return;
  const len = [...v].length;
  const bytes = Buffer.byteLength(v);
  const ok: Record<string, () => boolean> = {
    const: () => v === r.const, len: () => len === Number(r.len), minLen: () => len >= Number(r.minLen),
    maxLen: () => len <= Number(r.maxLen), lenBytes: () => bytes === Number(r.lenBytes),
    minBytes: () => bytes >= Number(r.minBytes), maxBytes: () => bytes <= Number(r.maxBytes),
    pattern: () => new RegExp(r.pattern, "u").test(v), prefix: () => v.startsWith(r.prefix),
    suffix: () => v.endsWith(r.suffix), contains: () => v.includes(r.contains),
    notContains: () => !v.includes(r.notContains), in: () => r.in.includes(v), notIn: () => !r.notIn.includes(v),
    wellKnownRegex: () => (r.strict === false ? LOOSE_HEADER : r.wellKnownRegex === "HTTP_HEADER_NAME" ? HEADER_NAME : HEADER_VALUE).test(v),
    hostname: () => /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(v),
    uri: () => URL.canParse(v),
  };
  for (const [name, val] of Object.entries(r)) {
    if (name === "strict" || name === "ignoreEmpty" || val === false) continue;
    if (!ok[name]) unchecked.add(`string.${name}`);
    else if (!ok[name]()) fail(`string.${name} ${JSON.stringify(val)} (got ${JSON.stringify(v)})`);
  }
}

export function checkRules(desc: DescMessage, message: Message, registry: Registry): RuleReport {
  const rulesExt = registry.getExtension("validate.rules") as DescExtension;
  const requiredExt = registry.getExtension("validate.required") as DescExtension;
  const disabledExt = registry.getExtension("validate.disabled") as DescExtension | undefined;
  if (!rulesExt || !requiredExt) throw new Error("validate.rules / validate.required not in the registry");
  const report: RuleReport = { violations: [], checked: 0, unchecked: new Set() };
  const rulesOf = (f: DescField): Rules | undefined => {
    const raw = getOption(f, rulesExt) as Message;
    const json = toJson(rulesExt.message!, raw) as JsonObject;
    return Object.keys(json).length ? json : undefined;
  };

  const enumCheck = (e: DescEnum, n: number, r: Rules | undefined, fail: (m: string) => void) => {
    const value = e.values.find((x) => x.number === n);
    if (value?.deprecated) fail(`deprecated enum value ${value.name}`);
    if (!r) return;
    report.checked++;
    if (r.definedOnly && !value) fail(`enum.defined_only (got ${n})`);
    const named = (x: unknown) => (typeof x === "number" ? x : e.values.find((v) => v.name === x)?.number ?? -1);
    numeric(n, { const: r.const, in: r.in, notIn: r.notIn }, named, fail);
  };

  const scalarCheck = (kind: string, v: unknown, r: Rules, fail: (m: string) => void) => {
    report.checked++;
    if (kind === "string") stringRules(v as string, r, fail, report.unchecked);
    else if (kind === "bool") { if (r.const !== undefined && v !== r.const) fail(`bool.const ${r.const}`); }
    else if (kind === "bytes") { if (r.minLen !== undefined && (v as Uint8Array).length < Number(r.minLen)) fail("bytes.min_len"); }
    else numeric(typeof v === "bigint" ? v : Number(v), r, (x) => (typeof v === "bigint" ? BigInt(x as string) : Number(x)), fail);
  };

  const walk = (r: ReflectMessage, path: string) => {
    if (r.desc.typeName === "google.protobuf.Any") {
      const any = r.message as Any;
      const inner = anyUnpack(any, registry);
      const innerDesc = registry.getMessage(any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1));
      if (inner && innerDesc) walk(reflect(innerDesc, inner), `${path}<${innerDesc.name}>`);
      return;
    }
    if (disabledExt && getOption(r.desc, disabledExt)) return;
    for (const oneof of r.desc.oneofs) {
      if (getOption(oneof, requiredExt) && (report.checked++, !r.oneofCase(oneof))) {
        report.violations.push(`${path}: oneof ${oneof.name} is required`);
      }
    }
    for (const f of r.desc.fields) {
      const at = path ? `${path}.${f.name}` : f.name;
      const fail = (m: string) => report.violations.push(`${at}: ${m}`);
      const set = r.isSet(f);
      if (f.oneof && !set) continue; // rules on a oneof member apply only when it is the chosen one
      if (set && f.deprecated) fail("deprecated field");
      const rules = rulesOf(f);
      if (f.fieldKind === "scalar") {
        if (rules) { const [k, v] = Object.entries(rules)[0]; scalarCheck(k, r.get(f), v, fail); }
      } else if (f.fieldKind === "enum") {
        enumCheck(f.enum, r.get(f) as number, rules?.enum, fail);
      } else if (f.fieldKind === "message") {
        const required = rules?.message?.required || rules?.duration?.required || rules?.any?.required || rules?.timestamp?.required;
        if (required) { report.checked++; if (!set) fail("required"); }
        if (!set) continue;
        const sub = r.get(f) as ReflectMessage;
        const { message: _m, ...typed } = rules ?? {};
        for (const [k, v] of Object.entries(typed)) {
          const { required: _r, ...bounds } = v as Rules;
          if (k === "duration") { report.checked++; numeric(nanos(sub.message), bounds, nanos, fail); }
          else if (k === "any") { report.checked++; if (v.in && !v.in.includes((sub.message as Any).typeUrl)) fail("any.in"); }
          else if (["string", "uint32", "uint64", "int32", "int64", "double", "float", "bool", "bytes"].includes(k)) {
            scalarCheck(k, sub.get(sub.desc.fields[0]), v, fail); // wrapper type: rules apply to .value
          } else report.unchecked.add(k);
        }
        walk(sub, at);
      } else if (f.fieldKind === "list") {
        const list = r.get(f);
        const rep = rules?.repeated;
        if (rep && !(rep.ignoreEmpty && list.size === 0)) {
          report.checked++;
          if (rep.minItems !== undefined && list.size < Number(rep.minItems)) fail(`repeated.min_items ${rep.minItems}`);
          if (rep.maxItems !== undefined && list.size > Number(rep.maxItems)) fail(`repeated.max_items ${rep.maxItems}`);
          if (rep.unique && new Set(list).size !== list.size) fail("repeated.unique");
        }
        let i = 0;
        for (const item of list) {
          const itemAt = `${at}[${i++}]`;
          const itemFail = (m: string) => report.violations.push(`${itemAt}: ${m}`);
          if (f.listKind === "message") walk(item as ReflectMessage, itemAt);
          else if (f.listKind === "enum") enumCheck(f.enum, item as number, rep?.items?.enum, itemFail);
          else if (rep?.items) { const [k, v] = Object.entries(rep.items)[0]; scalarCheck(k, item, v as Rules, itemFail); }
        }
      } else if (f.fieldKind === "map") {
        const map = r.get(f);
        const mr = rules?.map;
        if (mr && !(mr.ignoreEmpty && map.size === 0)) {
          report.checked++;
          if (mr.minPairs !== undefined && map.size < Number(mr.minPairs)) fail(`map.min_pairs ${mr.minPairs}`);
        }
        for (const [k, v] of map) {
          const entryAt = `${at}[${String(k)}]`;
          if (mr?.keys) { const [kk, kv] = Object.entries(mr.keys)[0]; scalarCheck(kk, k, kv as Rules, (m) => report.violations.push(`${entryAt} key: ${m}`)); }
          if (f.mapKind === "message") walk(v as ReflectMessage, entryAt);
        }
      }
    }
  };
  walk(reflect(desc, message), "");
  return report;
}
