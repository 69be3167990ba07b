// Python as a foreign client: grpcio + grpcio-tools from PyPI, pinned in
// scripts/tools/versions.json ("python-grpc") and installed into a venv by
// `npm run tools`. grpc_tools.protoc (protoc bundled, with the well-known
// types) generates the message modules and the service stubs from proto/ at
// test time (googleapis files from node_modules/google-proto-files), then
// test/interop/python/client.py runs the flow against each client target.
// A missing venv fails the suite (run `npm run tools`); it never skips.
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolPath } from "../../scripts/tools/index.js";
import {
  CLIENT_TARGET_NAMES,
  contractFiles,
  ensureDir,
  googleApiFiles,
  googleProtos,
  ok,
  protoRoot,
  resolveTarget,
  root,
  run,
  steps,
  uniqueEmail,
  type RunningTarget,
  expectClientFlow,
} from "./support.js";

describe("interop: Python grpcio client", function () {
  this.timeout(60_000);
  let python: string;
  let dir: string | undefined;
  const stubs = () => join(dir!, "stubs");

  before(async () => {
    python = toolPath("python-grpc"); // throws "... is not installed ...: run `npm run tools`"
    ok(await run(python, ["-c", "import grpc, grpc_tools.protoc"]), `${python} -c "import grpc, grpc_tools.protoc" (run \`npm run tools\`)`);
    dir = mkdtempSync(join(tmpdir(), "acme-python-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("generates message modules and service stubs with grpc_tools.protoc from proto/", async () => {
    const out = ensureDir(stubs());
    // One call does both: --python_out for every message (the googleapis files
    // too: no googleapis-common-protos in the venv), --grpc_python_out for the
    // services. grpc_tools adds its own include dir with the well-known types.
    const args = ["-m", "grpc_tools.protoc", `-I${protoRoot}`, `-I${googleProtos}`, `--python_out=${out}`, `--grpc_python_out=${out}`];
    ok(await run(python, [...args, ...contractFiles(), ...googleApiFiles]), "grpc_tools.protoc --python_out --grpc_python_out");
    ok(
      await run(python, ["-c", "import acme.auth.v1.auth_pb2_grpc, acme.order.v1.order_pb2_grpc, google.rpc.error_details_pb2"], { cwd: out }),
      "import stubs",
    );
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
        assert.ok(existsSync(join(stubs(), "acme/order/v1/order_pb2_grpc.py")), "the stubs were generated");
        const email = uniqueEmail("python");
        // 2 units at 19.99: a total of 3998 minor units, priced by the catalogue.
        const product = await target!.product({ priceMinor: 1999n });
        const r = await run(python, [join(root, "test/interop/python/client.py"), "--target", target!.grpcAddress, "--stubs", stubs(), "--email", email, "--product", product]);
        const s = steps(ok(r, `client.py --target ${target!.grpcAddress} (${name})`));
        expectClientFlow(s, email, 3998, (n) => n.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase());
      });
    });
  }
});
