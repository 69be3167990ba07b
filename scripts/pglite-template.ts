// `npm ci` runs this (postinstall): run PGlite's initdb once into a template
// under node_modules/.cache, so that the first `npm start` in a new DATA_DIR
// copies it instead (platform/pglite.ts). Never fails the install: without a
// template the first start runs initdb itself. ACME_PGLITE_TEMPLATE=off skips it.
import { ensurePgliteTemplate } from "../platform/pglite.js";

const t0 = performance.now();
try {
  const dir = await ensurePgliteTemplate();
  if (dir) console.log(`pglite: initdb template ready in ${dir} (${Math.round(performance.now() - t0)} ms)`);
} catch (err) {
  console.log(`pglite: no initdb template (${(err as Error)?.message ?? err}); the first npm start will run initdb itself`);
}
