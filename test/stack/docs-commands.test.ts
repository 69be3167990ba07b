// Every shell example in README.md and docs/*.md that calls the API (curl,
// grpcurl, buf curl) is run, as written, against the real Envoy (`npm run
// stack`'s topology) and against the all-in-one process (`npm start`'s), so
// the docs cannot rot. Blocks are extracted from the Markdown, not copied:
//   - a ```sh block runs as one bash script (set -euo pipefail), so variables
//     such as TOKEN flow from line to line as they do for a reader;
//   - localhost:8080 becomes the target's address, ada@example.com a fresh
//     address per run (registered first when the block only logs in; verified
//     when the block needs it: <token from the mail> is the token of her
//     verification mail, read from the target's inbox), <order id>
//     an order of the test user; $TOKEN and $ORDER (set by an earlier block for
//     a reader) that user's token and order unless the block sets its own;
//   - a block whose first line is "# reflection" uses server reflection, which
//     Envoy does not expose: under the stack it runs against the user service's
//     own port (as the README says), and the test checks Envoy refuses reflection.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { toolPath } from "../../scripts/tools/index.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { sharedEdgeStack } from "../support/edge-stack.js";
import { makeStackProduct } from "../support/products.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { tokenFromMail, type MailSource } from "../support/mail-token.js";
import { rest } from "./support.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const API_CALL = /(^|[\s$(|])(curl|grpcurl|buf curl)\s/m;

interface Block {
  file: string;
  line: number;
  script: string;
  reflection: boolean;
}

/** The ```sh blocks of the docs that call the API. */
export function apiBlocks(): Block[] {
  const files = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const out: Block[] = [];
  for (const file of files) {
    const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(sh|bash|shell)\s*$/.test(lines[i])) continue;
      const start = i + 1;
      let j = start;
      while (j < lines.length && !lines[j].startsWith("```")) j++;
      const script = lines.slice(start, j).join("\n");
      i = j;
      // Set-up commands (npm ci, npm start, ...) are not API calls.
      if (!API_CALL.test(script.replace(/^\s*#.*$/gm, ""))) continue;
      out.push({ file, line: start + 1, script, reflection: /^#\s*reflection\b/.test(lines[start] ?? "") });
    }
  }
  return out;
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile("bash", ["-c", `set -euo pipefail\n${script}`], { cwd: ROOT, env, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, out: `${stdout}\n${stderr}` });
    });
    child.stdin?.end();
  });
}

interface Target {
  name: string;
  /** host:port of the gRPC/REST listener. */
  address: string;
  /** host:port that serves reflection (the stack: the user service's own port). */
  reflection: string;
  token: string;
  orderId: string;
  /** Where the target's mail goes (Mailpit, or npm start's .eml files). */
  mail: MailSource;
}

const TOKEN_PLACEHOLDER = "<token from the mail>";

async function prepare(name: string, base: string, mail: MailSource, reflection = base, ensureProduct?: () => Promise<unknown>): Promise<Target> {
  const email = `docs-${randomUUID().slice(0, 8)}@example.com`;
  const reg = await rest(base, "POST", "/v1/auth/register", { body: { email, password: "docs-password-1", name: "Docs" } });
  assert.equal(reg.status, 200, reg.text);
  // Creating orders needs a verified address (docs/accounts.md).
  const verified = await rest(base, "POST", "/v1/auth/email/verify", { body: { token: await tokenFromMail(mail, email, "verify-email") } });
  assert.equal(verified.status, 200, verified.text);
  const login = await rest(base, "POST", "/v1/auth/login", { body: { email, password: "docs-password-1" } });
  assert.equal(login.status, 200, login.text);
  const token = login.body.tokens.accessToken;
  // The blocks order the first product in stock of the public list, as a reader does.
  await ensureProduct?.();
  const listed = await rest(base, "GET", "/v1/products?inStock=true");
  assert.ok(listed.body?.products?.length, `no product in stock on ${name}: ${listed.text}`);
  const order = await rest(base, "POST", "/v1/orders", { token, body: { lines: [{ productId: listed.body.products[0].id, quantity: 1 }], requestId: randomUUID() } });
  assert.equal(order.status, 200, order.text);
  return { name, address: base.replace(/^http:\/\//, ""), reflection: reflection.replace(/^http:\/\//, ""), token, orderId: order.body.order.id, mail };
}

/**
 * The block as run against `t`, and the fresh address it uses for ada@example.com;
 * a block that logs Ada in without registering her first gets her registered.
 */
async function localise(block: Block, t: Target): Promise<string> {
  const email = `ada-${randomUUID().slice(0, 8)}@example.com`;
  if (block.script.includes("ada@example.com") && !/register|AuthService\/Register/.test(block.script)) {
    const reg = await rest(`http://${t.address}`, "POST", "/v1/auth/register", { body: { email, password: "correct horse battery", name: "Ada" } });
    assert.equal(reg.status, 200, reg.text);
    // A reader who followed the README has verified Ada's address, unless this block is where they do.
    if (!block.script.includes(TOKEN_PLACEHOLDER)) {
      const verified = await rest(`http://${t.address}`, "POST", "/v1/auth/email/verify", { body: { token: await tokenFromMail(t.mail, email, "verify-email") } });
      assert.equal(verified.status, 200, verified.text);
    }
  }
  let script = block.script;
  if (script.includes(TOKEN_PLACEHOLDER)) {
    assert.ok(!/register|AuthService\/Register/.test(script), `${block.file}:${block.line}: a block that registers cannot also paste the mailed token`);
    script = script.replaceAll(TOKEN_PLACEHOLDER, await tokenFromMail(t.mail, email, "verify-email"));
  }
  return script
    .replace(/localhost:8080/g, block.reflection ? t.reflection : t.address)
    .replace(/ada@example\.com/g, email)
    .replace(/<order id>/g, t.orderId);
}

describe("docs: every curl, grpcurl and buf curl example runs", function () {
  this.timeout(300_000);
  const blocks = apiBlocks();
  let embedded: TestSystem;
  let rl: { path: string; remove(): void };
  const targets: Record<"envoy" | "npm start", Target | undefined> = { envoy: undefined, "npm start": undefined };
  const env = (t: Target): NodeJS.ProcessEnv => ({
    ...process.env,
    PATH: `${dirname(toolPath("grpcurl"))}:${join(ROOT, "node_modules/.bin")}:${process.env.PATH}`,
    // What an earlier block of the same page leaves in a reader's shell.
    TOKEN: t.token,
    ORDER: t.orderId,
  });

  before(async () => {
    rl = tempRateLimitConfig(GENEROUS_LIMITS);
    const stack = await sharedEdgeStack();
    await stack.setRateLimitConfig(rl.path);
    // npm start's defaults: orders need a verified address; demo products in the catalogue (CATALOGUE_SEED).
    embedded = await startTestSystem({ env: { RATELIMIT_CONFIG: rl.path, VERIFIED_EMAIL_POLICY: "enforce", CATALOGUE_SEED: "demo" } });
    // The stack seeds nothing: its admin adds a product, as an operator would.
    targets.envoy = await prepare("envoy", stack.edgeUrl, { mailpitUrl: stack.mailpitUrl! }, stack.serviceUrl("user"), () => makeStackProduct(stack, { name: "Docs widget" }));
    targets["npm start"] = await prepare("npm start", embedded.url, { dataDir: embedded.dataDir });
  });
  after(async () => {
    await embedded?.stop();
    rl?.remove();
  });

  it("finds the examples: README.md and docs/ call the API with curl, grpcurl and buf curl", () => {
    const all = blocks.map((b) => b.script).join("\n");
    for (const tool of ["curl -s", "grpcurl", "buf curl"]) assert.ok(all.includes(tool), `no ${tool} example found`);
    assert.ok(blocks.some((b) => b.file === "README.md"), "README.md has API examples");
  });

  for (const block of blocks) {
    for (const name of ["envoy", "npm start"] as const) {
      it(`${block.file}:${block.line} against ${name}${block.reflection && name === "envoy" ? " (its user service's port)" : ""}`, async () => {
        const t = targets[name]!;
        const r = await runBash(await localise(block, t), env(t));
        assert.equal(r.code, 0, `${block.file}:${block.line} exited ${r.code} against ${name}:\n${r.out.slice(-3000)}`);
        assert.doesNotMatch(r.out, /"code":\s*"?(internal|13|unavailable|14)\b/i, `${block.file}:${block.line}: a server error in the output:\n${r.out.slice(-2000)}`);
        // A failed login leaves TOKEN "null" and every later call a 401: only blocks that show a 401 may print one.
        if (!/\b401\b/.test(block.script)) {
          assert.doesNotMatch(r.out, /"code":\s*"?(unauthenticated|16)\b|Jwt is missing/i, `${block.file}:${block.line}: unauthenticated:\n${r.out.slice(-2000)}`);
        }
      });
    }
  }

  it("Envoy does not expose server reflection (the # reflection blocks say so)", async () => {
    const t = targets.envoy!;
    const r = await runBash(`grpcurl -plaintext ${t.address} list`, env(t));
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /Jwt is missing|Unimplemented|not found/i);
  });
});
