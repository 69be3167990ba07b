// google.api.http path templates ("/v1/orders/{order.id}") as OpenAPI paths,
// from the shared parser (platform/http-template.ts).
import { MULTI, parseTemplate, SINGLE, variableEnd } from "../../platform/http-template.js";

export interface PathVar {
  /** Proto field path, e.g. "order.id". */
  fieldPath: string;
  /** Sub-template when the variable is written {name=shelves/*}. */
  pattern?: string;
}

/** The OpenAPI path of a google.api.http path template ("/v1/{name=shelves/*}" -> "/v1/{name}") and its variables. */
export function openApiPath(source: string): { path: string; vars: PathVar[] } {
  const t = parseTemplate(source);
  const parts: string[] = [];
  const vars: PathVar[] = [];
  let i = 0;
  for (const v of t.variables) {
    parts.push(...literalsOnly(source, t.segments.slice(i, v.start)));
    const fieldPath = v.fieldPath.join(".");
    i = variableEnd(v, t.segments.length);
    const pattern = t.segments.slice(v.start, i).join("/");
    vars.push(pattern === SINGLE ? { fieldPath } : { fieldPath, pattern });
    parts.push(`{${fieldPath}}`);
  }
  parts.push(...literalsOnly(source, t.segments.slice(i)));
  return { path: `/${parts.join("/")}${t.verb ? `:${t.verb}` : ""}`, vars };
}

function literalsOnly(source: string, segments: readonly string[]): readonly string[] {
  if (segments.some((s) => s === SINGLE || s === MULTI)) {
    throw new Error(`unnamed wildcard in ${source}: name it ({field=*}) so OpenAPI can describe it`);
  }
  return segments;
}
