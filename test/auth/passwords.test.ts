// The bcrypt gate: bounded concurrency and a bounded queue; a full queue
// answers RESOURCE_EXHAUSTED at once rather than queueing without limit.
import { strict as assert } from "node:assert";
import { Code, ConnectError } from "@connectrpc/connect";
import { PasswordHasher, passwordProblem } from "../../services/auth/passwords.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, authModule, email, freshIp, PASSWORD, startAuthSystem } from "./helpers.js";

describe("auth: password hashing gate", () => {
  it("runs at most `concurrency` hashes, queues at most `queue`, and refuses the rest at once", async () => {
    const h = new PasswordHasher({ cost: 10, concurrency: 1, queue: 1 });
    const hash = await h.hash(PASSWORD);
    const running = h.verify(PASSWORD, hash);
    const queued = h.verify("wrong password", hash);
    assert.deepEqual(h.stats(), { running: 1, waiting: 1 });
    await assert.rejects(h.verify(PASSWORD, hash), (e: unknown) => e instanceof ConnectError && e.code === Code.ResourceExhausted);
    assert.equal(await running, true);
    assert.equal(await queued, false);
    assert.deepEqual(h.stats(), { running: 0, waiting: 0 });
    // Free again once the queue drained.
    assert.equal(await h.verify(PASSWORD, hash), true);
  });

  it("knows the byte limits and bcrypt cost", () => {
    assert.equal(passwordProblem("a".repeat(72)), undefined);
    assert.match(passwordProblem("a".repeat(73))!, /at most 72 bytes/);
    assert.match(passwordProblem("ü".repeat(37))!, /at most 72 bytes/); // 37 characters, 74 bytes
    assert.match(passwordProblem("a".repeat(7))!, /at least 8 bytes/);
    const h = new PasswordHasher({ cost: 10, concurrency: 2, queue: 2 });
    assert.equal(h.needsRehash("$2b$12$abcdefghijklmnopqrstuu2Yl3PpGdF1C6vQJ5vJp5Qm9rT6y3x7K"), true);
  });

  describe("through the API", () => {
    let t: TestSystem;
    before(async () => (t = await startAuthSystem({ env: { BCRYPT_CONCURRENCY: "1", BCRYPT_QUEUE: "1" } })));
    after(async () => t?.stop());

    it("a login flood beyond the queue gets RESOURCE_EXHAUSTED, the admitted ones are answered normally", async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, () => authFrom(t, freshIp()).login({ email: email("flood"), password: PASSWORD })),
      );
      const codes = results.map((r) => (r.status === "rejected" ? Code[ConnectError.from(r.reason).code] : "ok"));
      const exhausted = codes.filter((c) => c === "ResourceExhausted").length;
      const answered = codes.filter((c) => c === "Unauthenticated").length;
      assert.equal(exhausted + answered, 12, codes.join(","));
      assert.ok(exhausted >= 1, `expected some RESOURCE_EXHAUSTED: ${codes.join(",")}`);
      assert.ok(answered >= 2, `the running and the queued one are answered: ${codes.join(",")}`);
      assert.deepEqual(authModule(t).internals.hasher.stats(), { running: 0, waiting: 0 });
    });
  });
});
