// google.api.http path templates (google/api/http.proto):
//
//   Template = "/" Segments [ Verb ] ;
//   Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb     = ":" LITERAL ;
//
// Parsed into flat segments (literals, "*" and "**") plus the segment range
// each variable binds, the way grpc-httpjson-transcoding (Envoy's transcoder)
// does: a variable after "**" gets a negative end, counted from the path's end.
// The one parser of the tree: the embedded edge's route trie (edge/routes.ts) and
// the OpenAPI generator (scripts/openapi/openapi-path.ts) both use it.

export const SINGLE = "*";
export const MULTI = "**";

export interface TemplateVariable {
  /** Field path in the request message, e.g. ["user", "id"]. */
  readonly fieldPath: readonly string[];
  /** First path segment bound. */
  readonly start: number;
  /** One past the last segment bound; negative = counted from the end (after "**"). */
  readonly end: number;
}

export interface PathTemplate {
  readonly source: string;
  /** Literal text, "*" (one segment) or "**" (any number of segments). */
  readonly segments: readonly string[];
  readonly variables: readonly TemplateVariable[];
  /** Custom verb without the colon ("cancel"), or "". */
  readonly verb: string;
}

/** A variable's end as an index into `length` segments (resolves ends counted from the end). */
export function variableEnd(v: TemplateVariable, length: number): number {
  return v.end >= 0 ? v.end : length + v.end + 1;
}

export class TemplateError extends Error {
  constructor(source: string, problem: string) {
    super(`invalid http path template "${source}": ${problem}`);
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// RFC 3986 pchar without ":" (the verb separator) plus pct-encoded.
const LITERAL = /^(?:[A-Za-z0-9\-._~!$&'()+,;=@]|%[0-9A-Fa-f]{2})+$/;

export function parseTemplate(source: string): PathTemplate {
  const fail = (problem: string): never => {
    throw new TemplateError(source, problem);
  };
  if (!source.startsWith("/")) fail("must start with /");
  let body = source.slice(1);
  let verb = "";
  // The verb is a ":" after the last "/" that is not inside a variable.
  const lastSlash = body.lastIndexOf("/");
  const lastClose = body.lastIndexOf("}");
  const colon = body.lastIndexOf(":");
  if (colon > lastSlash && colon > lastClose) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (!LITERAL.test(verb)) fail(`bad verb "${verb}"`);
  }
  if (body === "") fail("no segments");

  const segments: string[] = [];
  const variables: TemplateVariable[] = [];
  let i = 0;
  const readSegments = (stopAt: string | undefined) => {
    for (;;) {
      let j = i;
      if (body[i] === "{") {
        if (stopAt) fail("nested variables");
        const close = body.indexOf("}", i);
        if (close < 0) fail("unclosed {");
        const inner = body.slice(i + 1, close);
        const eq = inner.indexOf("=");
        const path = eq < 0 ? inner : inner.slice(0, eq);
        const fieldPath = path.split(".");
        if (!fieldPath.every((p) => IDENT.test(p))) fail(`bad field path "${path}"`);
        const start = segments.length;
        if (eq < 0) segments.push(SINGLE);
        else {
          const saved = { body, i };
          body = inner.slice(eq + 1);
          i = 0;
          if (body === "") fail(`empty pattern for {${path}}`);
          readSegments("}");
          ({ body, i } = saved);
        }
        variables.push({ fieldPath, start, end: segments.length });
        i = close + 1;
      } else {
        while (j < body.length && body[j] !== "/") j++;
        const seg = body.slice(i, j);
        if (seg !== SINGLE && seg !== MULTI && !LITERAL.test(seg)) fail(`bad segment "${seg}"`);
        segments.push(seg);
        i = j;
      }
      if (i >= body.length) return;
      if (body[i] !== "/") fail(`unexpected "${body[i]}"`);
      i++;
      if (i >= body.length) fail("trailing /");
    }
  };
  readSegments(undefined);

  const multi = segments.indexOf(MULTI);
  if (multi >= 0) {
    if (segments.indexOf(MULTI, multi + 1) >= 0) fail(`more than one "**"`);
    for (let k = multi + 1; k < segments.length; k++) {
      if (segments[k] === SINGLE) fail(`only literals may follow "**"`);
    }
  }
  const seen = new Set<string>();
  const vars = variables.map((v) => {
    const key = v.fieldPath.join(".");
    if (seen.has(key)) fail(`variable ${key} bound twice`);
    seen.add(key);
    if (multi >= 0 && v.start > multi) fail(`variable ${key} after "**"`);
    // Variables that include or follow "**" end relative to the path's end.
    return multi >= 0 && v.end > multi ? { ...v, end: v.end - segments.length - 1 } : v;
  });
  return { source, segments, variables: vars, verb };
}
