// Changing one method's (acme.edge.v1.policy) option in the contract changes
// the answer at every entry point: a variant of auth.proto's descriptor where
// Register needs a user token, fed to the decision, to a system's gRPC and
// REST entries and to Envoy's generated config.
import { strict as assert } from "node:assert";
import { clone, create, createFileRegistry, getExtension, setExtension, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { parse } from "yaml";
import { policies, productFiles } from "../../app/contract.js";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { Access, policy as policyExt } from "../../gen/acme/edge/v1/policy_pb.js";
import { authorize, policyTable, type PolicyTable } from "../../platform/policy.js";
import { withImports } from "../../platform/registry.js";
import { renderEnvoyConfig } from "../../scripts/envoy-config.js";
import { filterConfig, JWT } from "../envoy/inputs.js";
import { jwtFor } from "../envoy/simulate.js";
import { startTestSystem, type TestSystem } from "../support/system.js";

const REGISTER = "/acme.auth.v1.AuthService/Register";

/** The product's policy table with one method's access changed in its descriptor. */
function variantTable(path: string, access: Access): PolicyTable {
  const [, typeName, methodName] = path.split("/");
  const files = withImports(productFiles).map((f) => {
    const proto = clone(FileDescriptorProtoSchema, f.proto);
    for (const s of proto.service) {
      if (`${proto.package}.${s.name}` !== typeName) continue;
      const m = s.method.find((x) => x.name === methodName)!;
      const options = m.options ?? create(MethodOptionsSchema);
      const p = getExtension(options, policyExt);
      setExtension(options, policyExt, { ...p, access });
      m.options = options;
    }
    return proto;
  });
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  const services = policies.services.map((s) => registry.getService(s.typeName) as DescService);
  return policyTable(services);
}

describe("policy variant: one option changed in the contract changes every entry point's answer", function () {
  this.timeout(120_000);
  const variant = variantTable(REGISTER, Access.AUTHENTICATED);
  let product: TestSystem;
  let changed: TestSystem;
  before(async () => {
    [product, changed] = await Promise.all([startTestSystem(), startTestSystem({ policies: variant })]);
  });
  after(async () => {
    await product?.system.stop();
    await changed?.system.stop();
  });

  it("the decision: anonymous Register is allowed by the contract, refused by the variant", () => {
    assert.equal(authorize(policies.get(REGISTER)!, undefined).allow, true);
    const d = authorize(variant.get(REGISTER)!, undefined);
    assert.ok(!d.allow && d.code === Code.Unauthenticated);
  });

  it("gRPC to the service: the same call succeeds on the contract's system, UNAUTHENTICATED on the variant's", async () => {
    const register = (t: TestSystem) =>
      createClient(AuthService, createGrpcTransport({ baseUrl: t.url }))
        .register({ email: `v-${Date.now()}@example.com`, password: "correct horse battery", name: "V" })
        .then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);
    assert.equal(await register(product), "ok");
    assert.equal(await register(changed), "Unauthenticated");
  });

  it("REST on the embedded edge: 200 on the contract's system, 401 on the variant's", async () => {
    const post = (t: TestSystem) =>
      fetch(`${t.url}/v1/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: `r-${Date.now()}@example.com`, password: "correct horse battery", name: "R" }),
      }).then(async (r) => (await r.arrayBuffer(), r.status));
    assert.equal(await post(product), 200);
    assert.equal(await post(changed), 401);
  });

  it("Envoy's generated config: no JWT asked for Register from the contract, a JWT from the variant", () => {
    const jwtOf = (table: PolicyTable) => jwtFor(filterConfig(parse(renderEnvoyConfig(undefined, [...table.all()])), JWT), REGISTER).providers;
    assert.deepEqual(jwtOf(policies), []);
    assert.ok(jwtOf(variant).length > 0);
  });
});
