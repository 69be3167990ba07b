// Go as a foreign client, in module mode: test/interop/go is the module
// acme.local/interop (go.mod pins google.golang.org/grpc, protobuf and genproto;
// protoc-gen-go and protoc-gen-go-grpc are tool directives). `npm run tools`
// (scripts/tools/go-modules.ts) downloads the modules and fills the build
// cache; here, offline (GOPROXY=off), buf generates the stubs with those two
// plugins into gen/ of a temp copy of the module (managed mode sets
// go_package_prefix acme.local/interop/gen), `go vet` and `go build` the client
// there (a few seconds with a warm cache), and the binary runs the flow against
// each client target. A missing Go toolchain or module fails the suite (run
// `npm run tools`); it never skips.
import { strict as assert } from "node:assert";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GO_INTEROP_MODULE, GO_PLUGINS, goForModules, goModuleEnv } from "../../scripts/tools/go-modules.js";
import { CLIENT_TARGET_NAMES, ok, resolveTarget, root, run, steps, uniqueEmail, type RunningTarget, expectClientFlow } from "./support.js";

const MODULE = "acme.local/interop";
const buf = join(root, "node_modules/.bin/buf");

/** buf.gen.yaml (v2) as JSON: both plugins write into `out`, import paths under MODULE/gen. */
function template(plugins: Record<string, string>, out: string): string {
  return JSON.stringify({
    version: "v2",
    managed: {
      enabled: true,
      // Only our files: the googleapis ones keep their go_package (genproto).
      override: [{ file_option: "go_package_prefix", value: `${MODULE}/gen`, path: "acme" }],
    },
    plugins: GO_PLUGINS.map((p) => ({ local: plugins[p], out, opt: [`module=${MODULE}`] })),
  });
}

describe("interop: Go grpc client", function () {
  this.timeout(60_000);
  let go: string;
  let env: NodeJS.ProcessEnv;
  const plugins: Record<string, string> = {};
  let dir: string | undefined;
  const moduleCopy = () => join(dir!, "module");
  const binary = () => join(dir!, "client");

  before(async function () {
    this.timeout(180_000); // a cold build cache compiles the plugins
    go = goForModules(); // throws naming the Go it found and `npm run tools`
    env = goModuleEnv({ offline: true });
    if (!existsSync(buf)) throw new Error(`${buf} is missing: run \`npm ci\``);
    for (const p of GO_PLUGINS) {
      // Builds the tool into the build cache if needed and prints its path.
      const r = await run(go, ["tool", "-n", p], { cwd: GO_INTEROP_MODULE, env, timeoutMs: 170_000 });
      plugins[p] = ok(r, `go tool -n ${p} in ${GO_INTEROP_MODULE} (modules missing? run \`npm run tools\`)`).trim();
    }
    dir = mkdtempSync(join(tmpdir(), "acme-go-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("generates Go stubs with buf (protoc-gen-go + protoc-gen-go-grpc from go.mod's tools) and builds the client (module mode)", async function () {
    this.timeout(240_000); // a cold build cache compiles grpc
    const mod = moduleCopy();
    cpSync(GO_INTEROP_MODULE, mod, { recursive: true, filter: (src) => src !== join(GO_INTEROP_MODULE, "gen") });
    ok(await run(buf, ["generate", "proto", "--template", template(plugins, mod)]), "buf generate (Go plugins)");
    for (const f of ["gen/acme/order/v1/order.pb.go", "gen/acme/order/v1/order_grpc.pb.go", "gen/acme/auth/v1/auth_grpc.pb.go"]) {
      assert.ok(existsSync(join(mod, f)), `buf wrote ${f} (go_package_prefix ${MODULE}/gen)`);
    }
    const missing = "(a module missing from the cache? run `npm run tools`)";
    ok(await run(go, ["vet", "./client"], { cwd: mod, env, timeoutMs: 230_000 }), `go vet ./client ${missing}`);
    ok(await run(go, ["build", "-o", binary(), "./client"], { cwd: mod, env, timeoutMs: 230_000 }), `go build ./client ${missing}`);
  });

  for (const name of CLIENT_TARGET_NAMES) {
    describe(`against ${name}`, () => {
      let target: RunningTarget | undefined;
      before(async () => {
        target = await resolveTarget(name);
      });
      after(async () => {
        await target?.stop();
      });

      it(`register -> login -> create order -> get order, with deadlines and error statuses (${name})`, async () => {
        assert.ok(existsSync(binary()), "the client was built");
        const email = uniqueEmail("go");
        // 4 units at 2.50: a total of 1000 minor units, priced by the catalogue.
        const product = await target!.product({ priceMinor: 250n });
        const r = await run(binary(), ["-addr", target!.grpcAddress, "-email", email, "-product", product]);
        const s = steps(ok(r, `go client -addr ${target!.grpcAddress} (${name})`));
        expectClientFlow(s, email, 1000, (n) => n);
      });
    });
  }
});
