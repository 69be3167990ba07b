// Request URL handling as Envoy does it in front of the transcoder:
// path normalisation (normalize_path, merge_slashes, escaped slashes rejected),
// splitting into segments with the custom verb cut off, and percent-decoding
// with grpc-httpjson-transcoding's rules (single-segment variables and query
// values: everything; multi-segment variables: all but RFC 6570 reserved
// characters; "+" stays "+" in query values, query_param_unescape_plus=false).

export class BadPathError extends Error {}

/** "/a//b/./c/../d" -> "/a/b/d". Throws BadPathError on %2F / %5C (path_with_escaped_slashes_action: REJECT_REQUEST). */
export function normalisePath(path: string): string {
  if (!path.startsWith("/")) throw new BadPathError("the path must start with /");
  if (/%2f|%5c/i.test(path)) throw new BadPathError("escaped slashes are not allowed in the path");
  const out: string[] = [];
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i];
    if (p === "" && i < parts.length - 1) continue; // merge_slashes
    if (p === ".") continue;
    if (p === "..") {
      out.pop();
      continue;
    }
    out.push(p);
  }
  return "/" + out.join("/");
}

/** Split a normalised path into segments and its custom verb (only verbs some route declares). */
export function splitPath(path: string, verbs: ReadonlySet<string>): { parts: string[]; verb: string } {
  let verb = "";
  const colon = path.lastIndexOf(":");
  if (colon > path.lastIndexOf("/")) {
    const v = path.slice(colon + 1);
    if (verbs.has(v)) {
      verb = v;
      path = path.slice(0, colon);
    }
  }
  const parts = path.length > 1 ? path.slice(1).split("/") : [];
  while (parts.length && parts[parts.length - 1] === "") parts.pop();
  return { parts, verb };
}

const RESERVED = new Set(":/?#[]@!$&'()*+,;=".split("").map((c) => c.charCodeAt(0)));

/** Percent-decode; `keepReserved` leaves encoded RFC 6570 reserved characters encoded. Invalid escapes stay as they are. */
export function unescape(s: string, keepReserved = false): string {
  if (!s.includes("%")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      const b = parseInt(s.slice(i + 1, i + 3), 16);
      if (!(keepReserved && RESERVED.has(b))) {
        bytes.push(b);
        i += 3;
        continue;
      }
    }
    const code = s.codePointAt(i)!;
    bytes.push(...Buffer.from(String.fromCodePoint(code), "utf8"));
    i += code > 0xffff ? 2 : 1;
  }
  return Buffer.from(bytes).toString("utf8");
}

export interface QueryParam {
  /** Field path as written, split on "." (not decoded, as in the transcoder). */
  readonly name: string;
  readonly value: string;
}

/** "a=1&b.c=x%20y&flag&=v" -> [{a,1},{b.c,"x y"}]; parameters without "=" or without a name are ignored. */
export function parseQuery(query: string): QueryParam[] {
  if (!query) return [];
  const out: QueryParam[] = [];
  for (const param of query.split("&")) {
    const eq = param.indexOf("=");
    if (eq <= 0) continue;
    out.push({ name: param.slice(0, eq), value: unescape(param.slice(eq + 1)) });
  }
  return out;
}
