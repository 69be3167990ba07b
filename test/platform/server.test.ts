import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import { startTestSystem, type TestSystem } from "../support/system.js";

const run = promisify(execFile);
const bufCurl = async (...args: string[]) => (await run("node_modules/.bin/buf", ["curl", ...args], { encoding: "utf8" })).stdout;

describe("one port: gRPC (h2c), Connect and HTTP/1.1", () => {
  let t: TestSystem;
  before(async () => (t = await startTestSystem()));
  after(async () => t?.stop());

  it("answers grpc.health.v1 Check overall and per service over gRPC", async () => {
    const health = createClient(Health, t.transport());
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await health.check({ service: "acme.order.v1.OrderService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(health.check({ service: "nope.Service" }), /unknown service/);
  });

  it("answers the same over the Connect protocol on HTTP/1.1", async () => {
    const health = createClient(Health, t.connectTransport());
    assert.equal((await health.check({ service: "acme.auth.v1.AuthService" })).status, HealthCheckResponse_ServingStatus.SERVING);
  });

  it("streams Watch and reports NOT_SERVING when shutting down", async () => {
    const health = createClient(Health, t.transport());
    const ac = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      try {
        for await (const r of health.watch({ service: "acme.user.v1.UserService" }, { signal: ac.signal })) {
          seen.push(r.status);
          if (seen.length === 1) t.system.health.set("acme.user.v1.UserService", HealthCheckResponse_ServingStatus.NOT_SERVING);
          if (seen.length === 2) ac.abort();
        }
      } catch {
        // aborted
      }
    })();
    await watching;
    assert.deepEqual(seen, [HealthCheckResponse_ServingStatus.SERVING, HealthCheckResponse_ServingStatus.NOT_SERVING]);
    t.system.health.set("acme.user.v1.UserService", HealthCheckResponse_ServingStatus.SERVING);
  });

  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    it(`lists the three services, health and reflection via buf curl (${protocol})`, async () => {
      const out = await bufCurl("--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol, t.url, "--list-services");
      const services = out.trim().split("\n").sort();
      for (const s of [
        "acme.auth.v1.AuthService",
        "acme.user.v1.UserService",
        "acme.order.v1.OrderService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]) {
        assert.ok(services.includes(s), `${s} missing from ${out}`);
      }
    });
  }

  it("describes a method through reflection (buf curl --list-methods)", async () => {
    const out = await bufCurl("--protocol", "grpc", "--http2-prior-knowledge", t.url, "--list-methods");
    assert.match(out, /acme\.order\.v1\.OrderService\/CreateOrder/);
  });

  it("answers unknown HTTP paths with a JSON 404", async () => {
    const res = await fetch(`${t.url}/no/such/path`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, 5);
  });
});
