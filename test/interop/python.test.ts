// Python (Debian python3-grpcio + python3-grpc-tools + protobuf-compiler) as a
// foreign client: stubs generated from proto/ at test time (googleapis files
// from node_modules/google-proto-files, which has the WKTs too), then
// test/interop/python/client.py runs the flow against the system.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { contractFiles, ensureDir, googleApiFiles, googleProtos, ok, onPath, protoRoot, relaxedRateLimits, root, run, skipWithout, steps, uniqueEmail } from "./support.js";

/** Debian's interpreter: the grpc packages belong to it, not to a python3 earlier on PATH. */
const python = process.env.ACME_PYTHON ?? "/usr/bin/python3";
export const PYTHON_PACKAGES = ["python3-grpcio", "python3-grpc-tools", "protobuf-compiler"];

describe("interop: Python grpcio client", function () {
  this.timeout(60_000);
  let t: TestSystem | undefined;
  let dir: string;

  before(async function () {
    const probe = await run(python, ["-c", "import grpc, grpc_tools.protoc"]).catch(() => ({ code: 1 }));
    const missing = probe.code === 0 ? [] : [`grpc / grpc_tools for ${python}`];
    if (!(await onPath("protoc"))) missing.push("protoc");
    skipWithout(this, missing, PYTHON_PACKAGES);
    dir = mkdtempSync(join(tmpdir(), "acme-python-"));
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("generates message modules (protoc) and service stubs (grpc_tools) from proto/", async () => {
    const out = ensureDir(join(dir, "stubs"));
    const includes = [`-I${protoRoot}`, `-I${googleProtos}`];
    // Messages with Debian's protoc 3.21 (the runtime is protobuf 4.21); Debian's
    // grpc_tools (1.14, protoc 3.5) cannot parse proto3 `optional` in
    // google/rpc/error_details.proto, so it only writes the *_pb2_grpc stubs.
    ok(await run("protoc", [...includes, `--python_out=${out}`, ...contractFiles(), ...googleApiFiles]), "protoc --python_out");
    ok(await run(python, ["-m", "grpc_tools.protoc", ...includes, `--grpc_python_out=${out}`, ...contractFiles()]), "grpc_tools.protoc --grpc_python_out");
    ok(await run(python, ["-c", "import acme.auth.v1.auth_pb2_grpc, acme.order.v1.order_pb2_grpc, google.rpc.error_details_pb2"], { cwd: out }), "import stubs");
  });

  it("register -> login -> create order -> get order, with deadlines and error statuses", async () => {
    const target = t!.url.replace(/^http:\/\//, "");
    const email = uniqueEmail("python");
    const r = await run(python, [join(root, "test/interop/python/client.py"), "--target", target, "--stubs", join(dir, "stubs"), "--email", email]);
    const s = steps(ok(r, "client.py"));
    assert.equal(s.get("register")?.email, email);
    assert.equal(s.get("login")?.userId, s.get("register")?.userId);
    assert.equal(s.get("login")?.tokenType, "Bearer");
    const created = s.get("create")!;
    assert.equal(created.userId, s.get("register")?.userId);
    assert.equal(created.totalCents, 3998);
    assert.equal(created.status, "ORDER_STATUS_PENDING");
    assert.match(String(created.createdAt), /^\d{4}-\d\d-\d\dT/);
    assert.equal(s.get("create-again")?.id, created.id, "same request_id, same order");
    assert.equal(s.get("get")?.id, created.id);
    assert.equal(s.get("not-found")?.code, "NOT_FOUND");
    const invalid = s.get("invalid-argument")!;
    assert.equal(invalid.code, "INVALID_ARGUMENT");
    assert.ok(
      (invalid.fieldViolations as { field: string }[]).some((v) => v.field === "quantity"),
      `google.rpc.BadRequest names quantity: ${JSON.stringify(invalid)}`,
    );
    assert.equal(s.get("unauthenticated")?.code, "UNAUTHENTICATED");
    assert.equal(s.get("deadline")?.code, "DEADLINE_EXCEEDED");
    assert.ok(s.has("done"));
  });
});
