// The API reference at /docs/ (edge/docs.ts; Envoy: scripts/envoy-config/routes.ts, the docs
// routes) in headless Chromium (Debian's chromium, scripts/test-all.sh), on both edges: the
// page loads with no failed request, nothing from another origin and no CSP violation, it
// lists every operation of gen/openapi.json, and a login tried from the page (after a
// registration tried from it) answers 200 with an access token. Before the browser: the
// files, their headers and the refusals, over plain HTTP.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { DOCS_CSP, DOCS_FILES, DOCS_INDEX_HTML, DOCS_INIT_JS, swaggerUiDir } from "../../edge/docs.js";
import { sharedEdgeStack } from "../support/edge-stack.js";
import { startTestSystem } from "../support/system.js";

/** Debian's chromium package (scripts/test-all.sh installs it). */
const CHROMIUM = "/usr/bin/chromium";
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** "POST /v1/auth/login" for every operation of the document the edges serve. */
function documentOperations(): string[] {
  const doc = JSON.parse(readFileSync(new URL("../../gen/openapi.json", import.meta.url), "utf8")) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => HTTP_METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)).sort();
}

/** The bytes each /docs/ path must answer. */
function expectedBody(name: string): Buffer {
  const f = DOCS_FILES.find((x) => x.name === name)!;
  return "inline" in f.source ? Buffer.from(f.source.inline) : readFileSync(join(swaggerUiDir(), f.source.packageFile));
}

interface Target {
  /** Plain HTTP base URL for the header checks (no browser: Envoy's plain listener would send a browser to https). */
  api: string;
  /** Where the browser opens the page. */
  page: string;
  close?(): Promise<void>;
}

interface PageRun {
  page: Page;
  /** Every request the page made, and those that failed or answered >= 400. */
  requests: string[];
  failures: string[];
  /** CSP violations and page errors. */
  errors: string[];
  close(): Promise<void>;
}

async function openDocs(browser: Browser, base: string): Promise<PageRun> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // Envoy's HTTPS listener: the stack's own CA
  const page = await context.newPage();
  const run: PageRun = { page, requests: [], failures: [], errors: [], close: () => context.close() };
  page.on("request", (r) => run.requests.push(r.url()));
  page.on("requestfailed", (r) => run.failures.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) run.failures.push(`${r.url()}: ${r.status()}`); });
  page.on("pageerror", (e) => run.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") run.errors.push(`console: ${m.text()}`); });
  const started = Date.now();
  const answer = await page.goto(`${base}/docs`, { waitUntil: "load" });
  assert.equal(answer?.status(), 200, `GET ${base}/docs (after its redirect)`);
  assert.equal(new URL(page.url()).pathname, "/docs/");
  await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
  if (process.env.ACME_DOCS_TIMING) console.log(`      ${base}/docs: operations shown after ${Date.now() - started} ms`);
  return run;
}

/** Expand an operation, Try it out, fill the JSON body, Execute: the live answer's status and body. */
async function tryItOut(page: Page, method: string, path: string, body: unknown): Promise<{ status: string; text: string }> {
  const op = page.locator(`.opblock-${method}`).filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
  assert.equal(await op.count(), 1, `one ${method.toUpperCase()} ${path} block`);
  await op.locator(".opblock-summary-control").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("textarea.body-param__text").fill(JSON.stringify(body));
  await op.locator("button.execute").click();
  const row = op.locator(".live-responses-table tr.response").first();
  await row.waitFor({ timeout: 20_000 });
  return {
    status: (await row.locator(".response-col_status").textContent())?.trim() ?? "",
    text: (await row.locator(".response-col_description pre").first().textContent()) ?? "",
  };
}

function docsPage(name: string, target: () => Promise<Target>) {
  describe(`API reference page (/docs/), ${name}`, function () {
    let t: Target;
    let browser: Browser;

    before(async function () {
      this.timeout(180_000);
      t = await target();
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    });
    after(async () => {
      await browser?.close();
      await t?.close?.();
    });

    it("serves the page, its initializer and swagger-ui-dist's files, GET and HEAD, with their types, CSP, nosniff and cache headers", async () => {
      for (const f of DOCS_FILES) {
        const want = expectedBody(f.name);
        for (const method of ["GET", "HEAD"]) {
          const r = await fetch(`${t.api}/docs/${f.name}`, { method, redirect: "manual" });
          const body = Buffer.from(await r.arrayBuffer());
          const what = `${method} /docs/${f.name}`;
          assert.equal(r.status, 200, what);
          assert.equal(r.headers.get("content-type"), f.contentType, what);
          assert.equal(r.headers.get("content-security-policy"), DOCS_CSP, what);
          assert.equal(r.headers.get("x-content-type-options"), "nosniff", what);
          assert.equal(r.headers.get("cache-control"), f.cacheControl, what);
          assert.equal(r.headers.get("content-length"), String(want.length), what);
          if (method === "GET") assert.ok(body.equals(want), `${what}: not the expected bytes (${body.length}, want ${want.length})`);
          else assert.equal(body.length, 0, what);
        }
      }
      assert.match(DOCS_INDEX_HTML, /src="\/docs\/swagger-ui-bundle\.js"/);
      assert.match(DOCS_INIT_JS, /url: "\/openapi\.json"/);
      const redirect = await fetch(`${t.api}/docs`, { redirect: "manual" });
      assert.equal(redirect.status, 301);
      assert.equal(new URL(redirect.headers.get("location")!, t.api).pathname, "/docs/");
    });

    it("refuses other methods (405, the edge's JSON error, allow: GET, HEAD) and answers 404 for other /docs/ paths", async () => {
      for (const [method, path] of [["POST", "/docs/"], ["DELETE", "/docs/swagger-ui-bundle.js"], ["PUT", "/docs"]]) {
        const r = await fetch(t.api + path, { method, redirect: "manual" });
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.get("allow"), "GET, HEAD", `${method} ${path}`);
        assert.equal((await r.json()).code, 12, `${method} ${path}`);
      }
      for (const path of ["/docs/index.html", "/docs/swagger-initializer.js", "/docs/swagger-ui-bundle.js.map", "/docs/package.json"]) {
        const r = await fetch(t.api + path, { redirect: "manual" });
        assert.equal(r.status, 404, path);
        assert.equal((await r.json()).code, 5, path);
      }
    });

    it("loads in Chromium from this origin only, with no failed request or CSP violation, and lists every operation of gen/openapi.json", async () => {
      const run = await openDocs(browser, t.page);
      try {
        const origin = new URL(t.page).origin;
        assert.deepEqual(run.requests.filter((u) => new URL(u).origin !== origin), [], "requests to another origin");
        for (const p of ["/docs/", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js", "/openapi.json"]) {
          assert.ok(run.requests.includes(origin + p), `the page did not load ${p}: ${run.requests.join(", ")}`);
        }
        const want = documentOperations();
        assert.ok(want.length > 10, `gen/openapi.json has ${want.length} operations`);
        const shown = await run.page.locator(".opblock").evaluateAll((els) => els.map((e) =>
          `${e.querySelector(".opblock-summary-method")?.textContent} ${e.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`));
        assert.equal(shown.length, want.length, "operation blocks on the page");
        assert.deepEqual(shown.sort(), want);
        assert.deepEqual(run.failures, [], "failed requests");
        assert.deepEqual(run.errors, [], "errors on the page");
      } finally {
        await run.close();
      }
    });

    it("registers and logs in through the page's Try it out: 200 with an accessToken", async () => {
      const run = await openDocs(browser, t.page);
      try {
        const email = `docs-${randomBytes(6).toString("hex")}@example.com`;
        const password = "docs page password";
        const registered = await tryItOut(run.page, "post", "/v1/auth/register", { email, password, name: "Docs Page" });
        assert.equal(registered.status, "200", registered.text);
        assert.deepEqual(JSON.parse(registered.text), { status: "accepted" });
        const login = await tryItOut(run.page, "post", "/v1/auth/login", { email, password });
        assert.equal(login.status, "200", login.text);
        const token = JSON.parse(login.text).tokens?.accessToken;
        assert.match(token ?? "", /^[\w-]+\.[\w-]+\.[\w-]+$/, login.text);
        const origin = new URL(t.page).origin;
        assert.ok(run.requests.includes(`${origin}/v1/auth/login`), "the login went to the page's origin");
        assert.deepEqual(run.requests.filter((u) => new URL(u).origin !== origin), [], "requests to another origin");
        assert.deepEqual(run.failures, [], "failed requests");
        assert.deepEqual(run.errors, [], "errors on the page");
      } finally {
        await run.close();
      }
    });
  });
}

docsPage("embedded edge (npm start)", async () => {
  const system = await startTestSystem();
  return { api: system.url, page: system.url, close: () => system.stop() };
});

// The browser goes to Envoy's HTTPS listener: on the plain one, a navigation (Upgrade-Insecure-Requests)
// is redirected there anyway (docs/tls.md).
docsPage("Envoy", async () => {
  const stack = await sharedEdgeStack();
  return { api: stack.edgeUrl, page: stack.tlsEdgeUrl };
});
