// Graceful shutdown: in-flight requests finish, new connections are refused,
// health reports NOT_SERVING while draining.
import { strict as assert } from "node:assert";
import { startTestSystem } from "../support/system.js";

describe("graceful shutdown", () => {
  it("finishes an in-flight register (bcrypt + profile + tokens) and then refuses new calls", async () => {
    const t = await startTestSystem({ edge: false });
    const auth = t.auth();
    const inflight = auth.register({ email: "drain@example.com", password: "correct horse battery", name: "Drain" });
    // Let the request reach the server before stopping.
    await new Promise((r) => setTimeout(r, 20));
    const stopping = t.stop();
    const res = await inflight;
    assert.ok(res.tokens?.accessToken, "the in-flight call completed with tokens");
    await stopping;
    await assert.rejects(fetch(`${t.url}/no/such/path`), /fetch failed/);
  });
});
