// envoy/envoy.yaml parsed strictly as envoy.config.bootstrap.v3.Bootstrap with Envoy's
// own API protos, and the protoc-gen-validate rules Envoy enforces. Each kind of
// mistake is shown to fail on a broken copy.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { buildDescriptorSet, compileEnvoyProtos, envoyMessage, envoyRegistry, parseBootstrap, patchValidateProto } from "./envoy-protos.js";
import { filterConfig, hcm, readRepo, vhost, JWT, type Json } from "./inputs.js";
import { checkRules } from "./pgv.js";

const load = (): Json => parse(readRepo("envoy/envoy.yaml"));
const rules = (doc: Json) => checkRules(envoyMessage("envoy.config.bootstrap.v3.Bootstrap"), parseBootstrap(doc), envoyRegistry());

describe("envoy/envoy.yaml against Envoy's API protos", function () {
  this.timeout(120_000); // the first run compiles the protos (~1 s), later runs read the cache

  before(() => envoyRegistry());

  describe("compiling Envoy's protos (node_modules/@grpc/grpc-js-xds/deps)", () => {
    it("caches the descriptor set under node_modules/.cache, keyed by package versions", () => {
      const path = compileEnvoyProtos();
      assert.match(path, /node_modules\/\.cache\/acme-envoy-protos\/envoy-[0-9a-f]{16}\.binpb$/);
      assert.ok(existsSync(path));
    });

    it("needs ignore_empty added to the vendored validate.proto (in a temp copy)", () => {
      const out = mkdtempSync(join(tmpdir(), "acme-unpatched-"));
      try {
        assert.throws(() => buildDescriptorSet(join(out, "set.binpb"), { patch: false }),
          /cannot resolve message field name for `validate\.StringRules`/);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      const patched = patchValidateProto("syntax = \"proto2\";\nmessage StringRules {\n}\nmessage BytesRules {\n}\nmessage RepeatedRules {\n}\nmessage MapRules {\n}\n");
      assert.equal(patched.match(/optional bool ignore_empty/g)?.length, 4);
      assert.equal(patchValidateProto(patched), patched, "idempotent");
    });
  });

  describe("strict parse", () => {
    it("parses as envoy.config.bootstrap.v3.Bootstrap", () => {
      assert.doesNotThrow(() => parseBootstrap(load()));
    });

    it("resolves every typed_config @type in the registry", () => {
      const types = new Set<string>();
      const walk = (v: Json) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === "object") {
          if (typeof v["@type"] === "string") types.add(v["@type"]);
          Object.values(v).forEach(walk);
        }
      };
      walk(load());
      assert.ok(types.size >= 12, `found ${types.size} @types`);
      for (const t of types) assert.ok(envoyRegistry().getMessage(t.split("/").pop()!), `${t} is not registered`);
    });

    const broken: [string, (doc: Json) => void, RegExp][] = [
      ["an unknown field", (d) => { hcm(d).stat_prefixx = "edge"; }, /stat_prefixx/],
      ["an unknown field inside a typed_config", (d) => { filterConfig(d, JWT).providers.acme.audience = "acme-api"; }, /audience/],
      ["a bad enum name", (d) => { hcm(d).codec_type = "HTTP9"; }, /HTTP9/],
      ["a Duration written as a number", (d) => { d.static_resources.clusters[0].connect_timeout = 1; }, /Duration|connect_timeout/],
      ["an unregistered @type", (d) => { hcm(d).http_filters[1].typed_config["@type"] = "type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope"; }, /nope/i],
      ["a string where a message is expected", (d) => { d.admin.address = "0.0.0.0:9901"; }, /Address/],
      ["an unknown field in a local reply mapper", (d) => { hcm(d).local_reply_config.mappers[0].header_to_add = []; }, /header_to_add/],
      ["a misspelt per-route FilterConfig field", (d) => { vhost(d).routes.find((r: Json) => r.name === "openapi").typed_per_filter_config["envoy.filters.http.grpc_json_transcoder"].disable = true; }, /disable/],
    ];
    for (const [what, breakIt, error] of broken) {
      it(`rejects ${what}`, () => {
        const doc = load();
        breakIt(doc);
        assert.throws(() => parseBootstrap(doc), error);
      });
    }
  });

  describe("validate.rules from Envoy's descriptors", () => {
    it("hold on every field of the config (and are really evaluated)", () => {
      const report = rules(load());
      assert.deepEqual(report.violations, []);
      assert.deepEqual([...report.unchecked], [], "rules this checker does not implement were hit");
      assert.ok(report.checked > 300, `only ${report.checked} constraints evaluated`);
    });

    const broken: [string, (doc: Json) => void, RegExp][] = [
      ["an empty stat_prefix (string min_len)", (d) => { hcm(d).stat_prefix = ""; }, /stat_prefix: string\.minLen/],
      ["a missing required message (health check timeout)", (d) => { delete d.static_resources.clusters[0].health_checks[0].timeout; }, /health_checks\[0\]\.timeout: required/],
      ["a zero Duration where gt 0 is required (health check interval)", (d) => { d.static_resources.clusters[0].health_checks[0].interval = "0s"; }, /interval: gt 0/],
      ["an enum number outside the enum (defined_only)", (d) => { hcm(d).codec_type = 9; }, /codec_type: enum\.defined_only/],
      ["a required oneof left unset (route match)", (d) => { vhost(d).routes[0].match = {}; }, /oneof path_specifier is required/],
      ["too few items (rate limit actions min_items)", (d) => { vhost(d).rate_limits[0].actions = []; }, /actions: repeated\.min_items/],
      ["a uint32 above lte (ratelimit stage)", (d) => { filterConfig(d, "envoy.filters.http.ratelimit").stage = 11; }, /stage: lte 10/],
      ["a deprecated field (Lua inline_code)", (d) => { filterConfig(d, "envoy.filters.http.lua").inline_code = "x"; }, /inline_code: deprecated field/],
      ["a local reply mapper without its filter (required)", (d) => { delete hcm(d).local_reply_config.mappers[0].filter; }, /mappers\[0\]\.filter: required/],
      ["a status filter without a runtime key (string min_len)", (d) => { hcm(d).local_reply_config.mappers[1].filter.and_filter.filters[0].status_code_filter.comparison.value.runtime_key = ""; }, /runtime_key: string\.minLen/],
      ["a direct response body with an empty filename (string min_len)", (d) => { vhost(d).routes.find((r: Json) => r.name === "openapi").direct_response.body.filename = ""; }, /filename: string\.minLen/],
    ];
    for (const [what, breakIt, violation] of broken) {
      it(`catch ${what}`, () => {
        const doc = load();
        breakIt(doc);
        const found = rules(doc).violations;
        assert.ok(found.some((v) => violation.test(v)), `expected ${violation} in:\n${found.join("\n")}`);
      });
    }
  });

  it("uses only access-log command operators Envoy knows (access log and header values)", () => {
    const known = /^(START_TIME|REQ\([^)]+\)|RESP\([^)]+\)|TRACE_ID|DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT|PROTOCOL|RESPONSE_CODE|GRPC_STATUS|RESPONSE_CODE_DETAILS|RESPONSE_FLAGS|DURATION|BYTES_RECEIVED|BYTES_SENT|UPSTREAM_CLUSTER|UPSTREAM_HOST|DYNAMIC_METADATA\([^)]+\))$/;
    const doc = load();
    const format = hcm(doc).access_log[0].typed_config.log_format.json_format;
    const ops = Object.values<string>(format).flatMap((v) => [...v.matchAll(/%([^%]+)%/g)].map((m) => m[1]));
    assert.ok(ops.includes("TRACE_ID") && ops.includes("REQ(X-REQUEST-ID)"), "trace id and request id are logged");
    // Header values are formatted too (response_headers_to_add, local reply mappers): a literal % must be %%.
    const headerOps: string[] = [];
    const walk = (v: Json) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        if (v.header && typeof v.header.value === "string") headerOps.push(...[...v.header.value.replaceAll("%%", "").matchAll(/%([^%]*)%/g)].map((m) => m[1]));
        Object.values(v).forEach(walk);
      }
    };
    walk(doc);
    assert.ok(headerOps.includes("RESP(X-RATELIMIT-RESET)"), "retry-after is formatted from x-ratelimit-reset");
    for (const op of [...ops, ...headerOps]) assert.match(op, known);
  });
});
