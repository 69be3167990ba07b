// Plain objects to a YAML node tree, with comments where a value is wrapped in note().
import { Pair, Scalar, YAMLMap, YAMLSeq, type Node } from "yaml";

/** A value with a comment printed above it (above the key inside a map). */
class Commented { constructor(readonly comment: string, readonly value: unknown) {} }
export const note = (comment: string, value: unknown) => new Commented(comment, value);

export function toNode(v: unknown): Node {
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
      if (val instanceof Commented) {
        key.commentBefore = val.comment.split("\n").map((l) => ` ${l}`).join("\n");
        map.items.push(new Pair(key, toNode(val.value)));
      } else map.items.push(new Pair(key, toNode(val)));
    }
    return map;
  }
  return new Scalar(v);
}
