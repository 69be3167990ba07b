// The services' copy of the auth service's JWKS (platform/auth/keys.ts remoteJwks):
// kept for the max-age the auth service gives, so a key published ahead of a
// rotation is known when it starts signing and a retired key is forgotten; a
// flood of unknown kids costs at most one fetch per minRefetchMs while fresh.
import { strict as assert } from "node:assert";
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { remoteJwks } from "../../platform/auth/keys.js";

const jwk = (kid: string) => ({ ...generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("remoteJwks", () => {
  let server: http.Server;
  let url: string;
  let published: object[] = [];
  let fetches = 0;
  let maxAge = 1;
  before(async () => {
    server = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json", "cache-control": `public, max-age=${maxAge}` });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  after(() => server.close());

  it("learns a key published after its first fetch once the JWKS is past its max-age, even within minRefetchMs", async () => {
    published = [jwk("old")];
    const keys = remoteJwks(url, { minRefetchMs: 60_000 });
    assert.ok(await keys.get("old"));
    published = [jwk("old"), jwk("new")];
    assert.equal(await keys.get("new"), undefined, "fresh keys: no refetch within minRefetchMs");
    await sleep(1100); // max-age=1
    assert.ok(await keys.get("new"), "stale keys: the unknown kid refetches");
  });

  it("forgets a retired key after the max-age (refreshed in the background while a known key is used)", async () => {
    published = [jwk("a"), jwk("b")];
    const keys = remoteJwks(url, { minRefetchMs: 60_000 });
    assert.ok(await keys.get("a"));
    published = [published[1]];
    await sleep(1100);
    assert.ok(await keys.get("a"), "served from the stale copy while the refresh runs");
    await sleep(100);
    assert.equal(await keys.get("a"), undefined, "gone after the refresh");
    assert.ok(await keys.get("b"));
  });

  it("fetches at most once per minRefetchMs for unknown kids while the keys are fresh", async () => {
    published = [jwk("k")];
    maxAge = 300;
    const keys = remoteJwks(url, { minRefetchMs: 60_000 });
    await keys.get("k");
    const before = fetches;
    for (let i = 0; i < 50; i++) assert.equal(await keys.get(`made-up-${i}`), undefined);
    assert.equal(fetches - before, 0);
  });
});
