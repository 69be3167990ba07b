// google.api.http path templates ("/v1/orders/{order.id}") as OpenAPI paths.

export interface PathVar {
  /** Proto field path, e.g. "order.id". */
  fieldPath: string;
  /** Sub-template when the variable is written {name=shelves/*}. */
  pattern?: string;
}

/** Parses a google.api.http path template into an OpenAPI path and its variables. */
export function parseTemplate(template: string): { path: string; vars: PathVar[] } {
  if (!template.startsWith("/")) throw new Error(`http template must start with "/": ${template}`);
  const vars: PathVar[] = [];
  let path = "";
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === "{") {
      const end = template.indexOf("}", i);
      if (end < 0) throw new Error(`unbalanced { in ${template}`);
      const body = template.slice(i + 1, end);
      const eq = body.indexOf("=");
      const fieldPath = eq < 0 ? body : body.slice(0, eq);
      const pattern = eq < 0 ? undefined : body.slice(eq + 1);
      vars.push(pattern && pattern !== "*" ? { fieldPath, pattern } : { fieldPath });
      path += `{${fieldPath}}`;
      i = end + 1;
    } else {
      if (c === "*" && (template[i - 1] === "/" || i === 0)) {
        throw new Error(`unnamed wildcard in ${template}: name it ({field=*}) so OpenAPI can describe it`);
      }
      path += c;
      i++;
    }
  }
  return { path, vars };
}
