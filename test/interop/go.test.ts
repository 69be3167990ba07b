// Go as a foreign client (Debian golang-go 1.19, protoc-gen-go, protoc-gen-go-grpc,
// grpc 1.33, golang/protobuf 1.5): protoc generates the stubs into a temp
// GOPATH at test time (import paths from the go_package options), `go build`
// in GOPATH mode compiles test/interop/go/client against Debian's
// /usr/share/gocode, and the binary runs the flow against the system. The go
// build cache lives under node_modules/.cache/acme-interop (cold build ~30 s
// on 2 cores, warm a few seconds).
import { strict as assert } from "node:assert";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { cacheRoot, contractFiles, ensureDir, googleProtos, ok, onPath, protoRoot, relaxedRateLimits, root, run, skipWithout, steps, uniqueEmail } from "./support.js";

export const GO_PACKAGES = [
  "golang-go",
  "protobuf-compiler",
  "protoc-gen-go",
  "protoc-gen-go-grpc",
  "golang-google-grpc-dev",
  "golang-google-protobuf-dev",
  "golang-github-golang-protobuf-1-5-dev",
];
const gocode = "/usr/share/gocode";
/** Where the client lives in GOPATH: the repository's import path (see go_package in proto/). */
const clientImport = "github.com/acme/acme-edge-stack/test/interop/go/client";

describe("interop: Go grpc client", function () {
  this.timeout(60_000);
  let t: TestSystem | undefined;
  let dir: string;
  let gopath: string;
  let env: NodeJS.ProcessEnv;
  const binary = () => join(dir, "client");

  before(async function () {
    const missing: string[] = [];
    for (const cmd of ["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"]) if (!(await onPath(cmd))) missing.push(cmd);
    for (const pkg of ["google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto/googleapis/rpc/errdetails"]) {
      if (!existsSync(join(gocode, "src", pkg))) missing.push(join(gocode, "src", pkg));
    }
    // grpc 1.33's codec goes through github.com/golang/protobuf: v1.3 (what apt
    // picks for golang-google-grpc-dev by default) panics on protoc-gen-go 1.28
    // messages ("protobuf tag not enough fields"); v1.4+ wraps APIv2.
    if (!existsSync(join(gocode, "src/github.com/golang/protobuf/proto/registry.go"))) {
      missing.push("github.com/golang/protobuf >= 1.4 (golang-github-golang-protobuf-1-5-dev)");
    }
    skipWithout(this, missing, GO_PACKAGES);
    dir = mkdtempSync(join(tmpdir(), "acme-go-"));
    gopath = join(dir, "gopath");
    env = {
      ...process.env,
      GO111MODULE: "off",
      GOPATH: `${gopath}:${gocode}`,
      GOCACHE: ensureDir(join(cacheRoot, "go-build")),
      GOFLAGS: "",
      CGO_ENABLED: "0",
    };
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("generates Go stubs with protoc-gen-go + protoc-gen-go-grpc and builds the client (GOPATH mode)", async function () {
    this.timeout(180_000); // a cold build compiles grpc from Debian's sources
    const src = ensureDir(join(gopath, "src"));
    ok(
      await run(
        "protoc",
        [`-I${protoRoot}`, `-I${googleProtos}`, `--go_out=${src}`, `--go-grpc_out=${src}`, ...contractFiles().map((f) => join(protoRoot, f))],
        { env },
      ),
      "protoc --go_out --go-grpc_out",
    );
    assert.ok(existsSync(join(src, "github.com/acme/acme-edge-stack/gen/go/acme/order/v1/order_grpc.pb.go")), "go_package import paths");
    const clientDir = join(src, clientImport);
    mkdirSync(clientDir, { recursive: true });
    copyFileSync(join(root, "test/interop/go/client/main.go"), join(clientDir, "main.go"));
    ok(await run("go", ["vet", "."], { cwd: clientDir, env, timeoutMs: 170_000 }), "go vet");
    ok(await run("go", ["build", "-o", binary(), "."], { cwd: clientDir, env, timeoutMs: 170_000 }), "go build");
  });

  it("register -> login -> create order -> get order, with deadlines and error statuses", async () => {
    assert.ok(existsSync(binary()), "the client was built");
    const email = uniqueEmail("go");
    const r = await run(binary(), ["-addr", t!.url.replace(/^http:\/\//, ""), "-email", email]);
    const s = steps(ok(r, "go client"));
    assert.equal(s.get("register")?.email, email);
    assert.equal(s.get("login")?.userId, s.get("register")?.userId);
    assert.equal(s.get("login")?.tokenType, "Bearer");
    const created = s.get("create")!;
    assert.equal(created.userId, s.get("register")?.userId);
    assert.equal(created.totalCents, 1000);
    assert.equal(created.status, "ORDER_STATUS_PENDING");
    assert.equal(s.get("create-again")?.id, created.id, "same request_id, same order");
    assert.equal(s.get("get")?.id, created.id);
    assert.equal(s.get("not-found")?.code, "NotFound");
    const invalid = s.get("invalid-argument")!;
    assert.equal(invalid.code, "InvalidArgument");
    assert.ok(
      (invalid.fieldViolations as { field: string }[]).some((v) => v.field === "quantity"),
      `google.rpc.BadRequest names quantity: ${JSON.stringify(invalid)}`,
    );
    assert.equal(s.get("unauthenticated")?.code, "Unauthenticated");
    assert.equal(s.get("deadline")?.code, "DeadlineExceeded");
    assert.ok(s.has("done"));
  });
});
