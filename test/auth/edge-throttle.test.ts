// The account flows of issue 15 as a client sees them through each edge
// (embedded and the real Envoy), REST/JSON, clients on distinct loopback
// addresses (127.0.0.2, .3, ...: the edges take the client address from the
// TCP peer, Envoy through x-envoy-external-address): an attacker hammering an
// account from one address gets 429 with Retry-After while its owner signs in
// from another; registration answers the same for a taken email; emails are
// normalised and look-alikes refused with 400 naming the field.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import { THROTTLED } from "../../services/auth/throttled.js";
import { startTarget, type Target } from "../edge/conformance/target.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: any;
}

/** POST JSON to the edge from a given local (loopback) address. */
function post(t: Target, from: string, path: string, body: unknown): Promise<Answer> {
  const url = new URL(path, t.url);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", localAddress: from, agent: false, timeout: 15_000, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(data);
  });
}

const PASSWORD = "edge-throttle-password";
const ATTEMPTS = 55;

for (const kind of ["embedded", "envoy"] as const) {
  describe(`auth account flows through the ${kind} edge`, function () {
    this.timeout(180_000);
    let t: Target;
    before(async () => (t = await startTarget(kind)));
    after(async () => t?.stop());
    // A loopback block of its own per edge, so the two runs share no address (the Envoy stack is shared by the run).
    const addr = (n: number) => `127.0.${kind === "embedded" ? 2 : 3}.${n}`;

    it(`an attacker's ${ATTEMPTS} wrong passwords from one address: 401 then 429 with Retry-After; the owner at another address signs in`, async () => {
      const email = `victim-${randomBytes(4).toString("hex")}@example.com`;
      const reg = await post(t, addr(10), "/v1/auth/register", { email, password: PASSWORD, name: "Victim" });
      assert.equal(reg.status, 200, JSON.stringify(reg.json));
      const counts = { 401: 0, 429: 0 };
      for (let i = 0; i < ATTEMPTS; i++) {
        const a = await post(t, addr(20), "/v1/auth/login", { email, password: `guess-${i}` });
        assert.ok(a.status === 401 || a.status === 429, `attempt ${i}: ${a.status} ${JSON.stringify(a.json)}`);
        counts[a.status as 401 | 429]++;
        if (a.status === 401) assert.deepEqual(a.json, { code: 16, message: INVALID_CREDENTIALS });
        else {
          assert.deepEqual(a.json, { code: 8, message: THROTTLED });
          const retry = Number(a.headers["retry-after"]);
          assert.ok(retry >= 1 && retry <= 60, `retry-after ${a.headers["retry-after"]}`);
        }
      }
      assert.deepEqual(counts, { 401: 5, 429: ATTEMPTS - 5 });
      // The right password from the attacker's address waits too...
      assert.equal((await post(t, addr(20), "/v1/auth/login", { email, password: PASSWORD })).status, 429);
      // ...while the owner, elsewhere, signs in.
      const owner = await post(t, addr(30), "/v1/auth/login", { email, password: PASSWORD });
      assert.equal(owner.status, 200, JSON.stringify(owner.json));
      assert.equal(owner.json.user.email, email);
      assert.ok(owner.json.tokens.accessToken);
    });

    it("registration answers a taken email exactly as a new one: 200 {\"status\":\"accepted\"}, no tokens", async () => {
      const email = `reg-${randomBytes(4).toString("hex")}@example.com`;
      const first = await post(t, addr(40), "/v1/auth/register", { email, password: PASSWORD, name: "First" });
      const again = await post(t, addr(41), "/v1/auth/register", { email, password: "another password", name: "Second" });
      assert.equal(first.status, 200);
      assert.deepEqual(first.json, { status: "accepted" });
      assert.equal(again.status, first.status);
      assert.deepEqual(again.json, first.json);
      assert.equal(again.headers["content-type"], first.headers["content-type"]);
      assert.equal((await post(t, addr(42), "/v1/auth/login", { email, password: "another password" })).status, 401);
    });

    it("'Alice@Example.com.' and 'alice@example.com' are one account; a Cyrillic look-alike is 400 naming email", async () => {
      const local = `alice-${randomBytes(4).toString("hex")}`;
      assert.equal((await post(t, addr(50), "/v1/auth/register", { email: `A${local.slice(1)}@Example.com.`, password: PASSWORD, name: "Alice" })).status, 200);
      const l = await post(t, addr(51), "/v1/auth/login", { email: `${local}@example.com`, password: PASSWORD });
      assert.equal(l.status, 200, JSON.stringify(l.json));
      assert.equal(l.json.user.email, `${local}@example.com`);
      const bad = await post(t, addr(52), "/v1/auth/register", { email: `\u0430${local.slice(1)}@example.com`, password: PASSWORD, name: "Look Alike" });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.code, 3);
      const fields = bad.json.details?.flatMap((d: { fieldViolations?: { field: string }[] }) => d.fieldViolations ?? []).map((v: { field: string }) => v.field);
      assert.deepEqual(fields, ["email"], JSON.stringify(bad.json));
    });
  });
}
