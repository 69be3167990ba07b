// Plain objects to a YAML node tree, with comments where a value is wrapped in note(),
// and anchors/aliases where one value is used twice (shareIdentical()).
import { Alias, Pair, Scalar, YAMLMap, YAMLSeq, type Node } from "yaml";

/** A value with a comment printed above it (above the key inside a map). */
class Commented { constructor(readonly comment: string, readonly value: unknown) {} }
export const note = (comment: string, value: unknown) => new Commented(comment, value);

/** A value printed once with an anchor (&name), then as an alias (*name) wherever else it is used. */
class Shared {
  printed = false;
  constructor(readonly anchor: string, readonly value: unknown) {}
}

const isObject = (v: unknown): boolean => (v instanceof Commented ? isObject(v.value) : v !== null && typeof v === "object");
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Where b (a map, or a list of { name } items) holds the same value as a under the same key (or
 * name), both refer to one Shared value: printed in a, aliased in b. Only maps and lists are
 * shared. Anchors are prefix + key.
 */
export function shareIdentical(a: Record<string, unknown>, b: Record<string, unknown>, prefix: string): void {
  for (const [k, v] of Object.entries(b)) {
    if (!isObject(v) || !same(v, a[k])) continue;
    a[k] = b[k] = new Shared(`${prefix}${k}`, v);
  }
}
export function shareIdenticalItems(a: unknown[], b: unknown[], prefix: string): void {
  const plain = (x: unknown) => (x instanceof Commented ? x.value : x) as { name?: string };
  b.forEach((item, i) => {
    const j = a.findIndex((x) => plain(x).name === plain(item).name && same(x, item));
    if (j < 0) return;
    const name = String(plain(item).name).split(".").pop();
    a[j] = b[i] = new Shared(`${prefix}${name}`, item) as never;
  });
}

export function toNode(v: unknown): Node {
  if (v instanceof Shared) {
    if (v.printed) return new Alias(v.anchor);
    v.printed = true;
    const n = toNode(v.value);
    n.anchor = v.anchor;
    return n;
  }
  if (v instanceof Commented) {
    const n = toNode(v.value);
    n.commentBefore = v.comment.split("\n").map((l) => ` ${l}`).join("\n");
    return n;
  }
  if (Array.isArray(v)) {
    const seq = new YAMLSeq();
    for (const item of v) seq.items.push(toNode(item));
    return seq;
  }
  if (v !== null && typeof v === "object") {
    const map = new YAMLMap();
    for (const [k, val] of Object.entries(v)) {
      const key = new Scalar(k);
      if (val instanceof Shared && val.printed) {
        map.items.push(new Pair(key, toNode(val)));
      } else if (val instanceof Shared && val.value instanceof Commented) {
        key.commentBefore = val.value.comment.split("\n").map((l) => ` ${l}`).join("\n");
        map.items.push(new Pair(key, toNode(new Shared(val.anchor, val.value.value))));
        val.printed = true;
      } else if (val instanceof Commented) {
        key.commentBefore = val.comment.split("\n").map((l) => ` ${l}`).join("\n");
        map.items.push(new Pair(key, toNode(val.value)));
      } else map.items.push(new Pair(key, toNode(val)));
    }
    return map;
  }
  return new Scalar(v);
}
