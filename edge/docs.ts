// GET /docs/: the API reference, /openapi.json rendered by Swagger UI. The page and
// its initializer are ours (below); the viewer's script, stylesheet and icon are read
// from the installed swagger-ui-dist package (never copied into the repository). Nothing
// is loaded from another origin: the CSP allows this origin only, and "Try it out"
// calls this same origin (the document has no `servers`). Envoy serves the same files
// with the same headers (scripts/envoy-config/routes.ts, the docs routes).
//   GET|HEAD /docs                  301 to /docs/
//   GET|HEAD /docs/                 the page
//   GET|HEAD /docs/<file>           DOCS_FILES
//   other methods on those paths    405, the edge's JSON error; other /docs/ paths: 404
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { HttpHandler } from "../platform/server.js";
import { OPENAPI_PATH } from "./openapi.js";
import { localReply } from "./errors.js";

export const DOCS_PATH = "/docs";
export const DOCS_PREFIX = "/docs/";

/** No inline script, nothing from another origin, never framed. Swagger UI needs data: images (its CSS icons). */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Our own files (and the /docs redirect): small, rarely changed. */
export const DOCS_OWN_CACHE = "public, max-age=300";
/** The package's files change only with its version (package.json). */
const PACKAGE_CACHE = "public, max-age=86400";

export const DOCS_INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<link rel="icon" type="image/png" href="${DOCS_PREFIX}favicon-32x32.png">
<link rel="stylesheet" href="${DOCS_PREFIX}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_PREFIX}swagger-ui-bundle.js"></script>
<script src="${DOCS_PREFIX}init.js"></script>
</body>
</html>
`;

/** The initializer (a file of its own: the CSP allows no inline script). No validator badge (another origin). */
export const DOCS_INIT_JS = `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(OPENAPI_PATH)},
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
`;

export interface DocsFile {
  /** Served at DOCS_PREFIX + name ("" is the page). */
  readonly name: string;
  readonly contentType: string;
  readonly cacheControl: string;
  /** Our own text, or a file of swagger-ui-dist. */
  readonly source: { inline: string } | { packageFile: string };
}

export const DOCS_FILES: readonly DocsFile[] = [
  { name: "", contentType: "text/html; charset=utf-8", cacheControl: DOCS_OWN_CACHE, source: { inline: DOCS_INDEX_HTML } },
  { name: "init.js", contentType: "text/javascript; charset=utf-8", cacheControl: DOCS_OWN_CACHE, source: { inline: DOCS_INIT_JS } },
  { name: "swagger-ui-bundle.js", contentType: "text/javascript; charset=utf-8", cacheControl: PACKAGE_CACHE, source: { packageFile: "swagger-ui-bundle.js" } },
  { name: "swagger-ui.css", contentType: "text/css; charset=utf-8", cacheControl: PACKAGE_CACHE, source: { packageFile: "swagger-ui.css" } },
  { name: "favicon-32x32.png", contentType: "image/png", cacheControl: PACKAGE_CACHE, source: { packageFile: "favicon-32x32.png" } },
];

/** The installed swagger-ui-dist folder (node_modules/swagger-ui-dist). */
export function swaggerUiDir(): string {
  const resolveFrom = createRequire(import.meta.url);
  return dirname(resolveFrom.resolve("swagger-ui-dist/package.json"));
}

/** Headers of a docs answer (both edges). */
export function docsHeaders(f: DocsFile): Record<string, string> {
  return {
    "content-type": f.contentType,
    "cache-control": f.cacheControl,
    "content-security-policy": DOCS_CSP,
    "x-content-type-options": "nosniff",
  };
}

export function docsHandler(packageDir = swaggerUiDir()): HttpHandler {
  const files = new Map(DOCS_FILES.map((f) => [DOCS_PREFIX + f.name, f]));
  // The package's files are read on first use (1.9 MB: most processes never serve them), and kept.
  const bodies = new Map<string, Buffer>();
  const bodyOf = (f: DocsFile) => {
    let b = bodies.get(f.name);
    if (!b) {
      b = "inline" in f.source ? Buffer.from(f.source.inline) : readFileSync(join(packageDir, f.source.packageFile));
      bodies.set(f.name, b);
    }
    return b;
  };
  return (req, res) => {
    const [path, query] = splitQuery(req.url ?? "");
    if (path !== DOCS_PATH && !path.startsWith(DOCS_PREFIX)) return false;
    const file = files.get(path);
    if (path !== DOCS_PATH && !file) {
      const reply = localReply(404, "");
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      const reply = localReply(405, `Method ${req.method} is not allowed on ${path}; allowed: GET, HEAD.`, { allow: "GET, HEAD" });
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
      return true;
    }
    if (!file) {
      res.writeHead(301, { location: DOCS_PREFIX + query, "cache-control": DOCS_OWN_CACHE, "content-length": 0 });
      res.end();
      return true;
    }
    const body = bodyOf(file);
    res.writeHead(200, { ...docsHeaders(file), "content-length": body.length });
    if (req.method === "HEAD") res.end();
    else res.end(body);
    return true;
  };
}

/** "/a?b" -> ["/a", "?b"]. */
function splitQuery(url: string): [string, string] {
  const i = url.indexOf("?");
  return i < 0 ? [url, ""] : [url.slice(0, i), url.slice(i)];
}
