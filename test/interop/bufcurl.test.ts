// buf curl (node_modules/.bin/buf) as a foreign client: reflection v1 and
// v1alpha, a method described through reflection, and the register -> login
// -> create order -> get order flow over gRPC (h2c) and Connect (HTTP/1.1).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { ok, relaxedRateLimits, root, run, uniqueEmail } from "./support.js";
import { makeProduct } from "../support/products.js";

const buf = join(root, "node_modules/.bin/buf");
const h2 = ["--protocol", "grpc", "--http2-prior-knowledge"];
/** Connect and gRPC-Web over HTTP/1.1 cannot use reflection (it streams): the schema is the built descriptor set. */
const h1 = (protocol: "connect" | "grpcweb") => ["--protocol", protocol, "--schema", join(root, "gen/api.binpb")];

describe("interop: buf curl", function () {
  this.timeout(60_000);
  let t: TestSystem;
  let dir: string;
  const curl = async (args: string[]) => run(buf, ["curl", ...args]);
  const call = async (args: string[], path: string, body: unknown, token?: string) =>
    JSON.parse(
      ok(await curl([...args, ...(token ? ["-H", `authorization: Bearer ${token}`] : []), "-d", JSON.stringify(body), `${t.url}/${path}`]), `buf curl ${path}`),
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "acme-bufcurl-"));
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    it(`lists services and their methods through reflection (${protocol})`, async () => {
      const services = ok(await curl([...h2, "--reflect-protocol", protocol, t.url, "--list-services"]), "list-services").trim().split("\n");
      for (const s of ["acme.auth.v1.AuthService", "acme.user.v1.UserService", "acme.order.v1.OrderService"]) assert.ok(services.includes(s), `${s} not in ${services}`);
      const methods = ok(await curl([...h2, "--reflect-protocol", protocol, t.url, "--list-methods"]), "list-methods").trim().split("\n");
      for (const m of [
        "acme.auth.v1.AuthService/Register",
        "acme.auth.v1.AuthService/Login",
        "acme.order.v1.OrderService/CreateOrder",
        "acme.order.v1.OrderService/GetOrder",
      ]) {
        assert.ok(methods.includes(m), `${m} not in ${methods}`);
      }
    });
  }

  for (const version of ["v1", "v1alpha"]) {
    it(`describes CreateOrder through reflection ${version} (file_containing_symbol)`, async () => {
      const out = await call(h2, `grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`, {
        fileContainingSymbol: "acme.order.v1.OrderService.CreateOrder",
      });
      const files = (out.fileDescriptorResponse.fileDescriptorProto as string[]).map((b64) => fromBinary(FileDescriptorProtoSchema, Buffer.from(b64, "base64")));
      const file = files.find((f) => f.name === "acme/order/v1/order.proto");
      assert.ok(file, `order.proto not in ${files.map((f) => f.name)}`);
      const method = file.service.find((s) => s.name === "OrderService")?.method.find((m) => m.name === "CreateOrder");
      assert.equal(method?.inputType, ".acme.order.v1.CreateOrderRequest");
      assert.equal(method?.outputType, ".acme.order.v1.CreateOrderResponse");
      assert.ok(file.messageType.some((m) => m.name === "Order" && m.field.some((f) => f.name === "lines")));
    });
  }

  const flows: [string, string[]][] = [
    ["gRPC over h2c, schema by reflection", h2],
    ["Connect over HTTP/1.1", h1("connect")],
  ];
  for (const [name, args] of flows) {
    it(`register -> login -> create order -> get order (${name})`, async () => {
      const email = uniqueEmail("bufcurl");
      const password = "correct horse battery";
      const reg = await call(args, "acme.auth.v1.AuthService/Register", { email, password, name: "Buf Curl" });
      assert.deepEqual(reg, { status: "accepted" });
      const login = await call(args, "acme.auth.v1.AuthService/Login", { email, password });
      const token: string = login.tokens.accessToken;
      assert.equal(login.user.email, email);

      const requestId = randomUUID();
      const product = await makeProduct(t, { priceMinor: 1999n });
      const created = await call(args, "acme.order.v1.OrderService/CreateOrder", { lines: [{ productId: product.id, quantity: 3 }], requestId }, token);
      assert.equal(created.order.userId, login.user.id);
      assert.equal(created.order.total.amountMinor, "5997", "int64 is a JSON string");
      assert.equal(created.order.status, "ORDER_STATUS_PENDING");
      const got = await call(args, "acme.order.v1.OrderService/GetOrder", { id: created.order.id }, token);
      assert.deepEqual(got.order, created.order);

      // Errors: status code and message on stderr, non-zero exit.
      const missing = await curl([...args, "-H", `authorization: Bearer ${token}`, "-d", JSON.stringify({ id: randomUUID() }), `${t.url}/acme.order.v1.OrderService/GetOrder`]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /not_found/);
      const anonymous = await curl([...args, "-d", JSON.stringify({ id: created.order.id }), `${t.url}/acme.order.v1.OrderService/GetOrder`]);
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.stderr, /unauthenticated/);
    });
  }

  it("calls GetOrder over gRPC-Web (HTTP/1.1) too", async () => {
    const email = uniqueEmail("grpcweb");
    await call(h2, "acme.auth.v1.AuthService/Register", { email, password: "correct horse battery", name: "Web" });
    const token: string = (await call(h2, "acme.auth.v1.AuthService/Login", { email, password: "correct horse battery" })).tokens.accessToken;
    const created = await call(h2, "acme.order.v1.OrderService/CreateOrder", { lines: [{ productId: (await makeProduct(t)).id, quantity: 1 }], requestId: randomUUID() }, token);
    const got = await call(h1("grpcweb"), "acme.order.v1.OrderService/GetOrder", { id: created.order.id }, token);
    assert.equal(got.order.id, created.order.id);
  });
});
