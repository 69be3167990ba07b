// Envoy's own API protos (shipped in node_modules/@grpc/grpc-js-xds/deps) compiled with
// the npm buf binary into a descriptor set, cached per package version, and a strict
// parse of envoy/envoy.yaml as envoy.config.bootstrap.v3.Bootstrap with them.
// Nothing is copied into the repo: a temp copy is patched and built, then deleted.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, fromJson, type DescMessage, type FileRegistry, type JsonValue, type Message } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const XDS = join(ROOT, "node_modules/@grpc/grpc-js-xds");
const DEPS = join(XDS, "deps");
const BUF = join(ROOT, "node_modules/.bin/buf");

/** Every proto whose messages envoy/envoy.yaml uses, as bootstrap or as a typed_config @type. */
export const ENVOY_PROTO_FILES = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/config/trace/v3/opentelemetry.proto",
  "envoy/extensions/access_loggers/stream/v3/stream.proto",
  "envoy/extensions/filters/http/buffer/v3/buffer.proto",
  "envoy/extensions/filters/http/connect_grpc_bridge/v3/config.proto",
  "envoy/extensions/filters/http/cors/v3/cors.proto",
  "envoy/extensions/filters/http/grpc_json_transcoder/v3/transcoder.proto",
  "envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto",
  "envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto",
  "envoy/extensions/filters/http/health_check/v3/health_check.proto",
  "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
  "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
  "envoy/extensions/filters/http/lua/v3/lua.proto",
  "envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

/**
 * The vendored protoc-gen-validate validate.proto predates the envoy protos: they set
 * `ignore_empty`, which it lacks. Add it (upstream field numbers) to a temp copy.
 */
export function patchValidateProto(src: string): string {
  let out = src;
  for (const [msg, num] of [["StringRules", 26], ["BytesRules", 16], ["RepeatedRules", 5], ["MapRules", 6]] as const) {
    const start = out.indexOf(`\nmessage ${msg} {`);
    if (start < 0) throw new Error(`validate.proto: no message ${msg}`);
    const end = out.indexOf("\n}", start);
    if (out.slice(start, end).includes("ignore_empty")) continue;
    out = `${out.slice(0, end)}\n    optional bool ignore_empty = ${num};${out.slice(end)}`;
  }
  return out;
}

function cacheKey(): string {
  const version = (p: string) => JSON.parse(readFileSync(join(p, "package.json"), "utf8")).version as string;
  return createHash("sha256")
    .update([version(XDS), version(join(ROOT, "node_modules/@bufbuild/buf")), patchValidateProto.toString(), ...ENVOY_PROTO_FILES].join("\n"))
    .digest("hex")
    .slice(0, 16);
}

export const CACHE_DIR = join(ROOT, "node_modules/.cache/acme-envoy-protos");

/**
 * Build Envoy's descriptor set into `out` from a temp copy of the protos. With
 * patch: false the vendored validate.proto is used as is (buf then fails).
 */
export function buildDescriptorSet(out: string, opts: { patch: boolean }): void {
  const work = mkdtempSync(join(tmpdir(), "acme-envoy-protos-"));
  try {
    for (const dir of ["envoy-api", "googleapis", "xds"]) cpSync(join(DEPS, dir), join(work, dir), { recursive: true });
    mkdirSync(join(work, "pgv/validate"), { recursive: true });
    const validate = readFileSync(join(DEPS, "protoc-gen-validate/validate/validate.proto"), "utf8");
    writeFileSync(join(work, "pgv/validate/validate.proto"), opts.patch ? patchValidateProto(validate) : validate);
    writeFileSync(join(work, "buf.yaml"),
      "version: v2\nmodules:\n  - path: envoy-api\n  - path: googleapis\n  - path: xds\n  - path: pgv\n");
    const paths = ENVOY_PROTO_FILES.flatMap((f) => ["--path", `envoy-api/${f}`]);
    execFileSync(BUF, ["build", "-o", join(work, "set.binpb"), ...paths], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    cpSync(join(work, "set.binpb"), tmp);
    renameSync(tmp, out); // atomic: parallel runs never read half a file
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Compile (or reuse the cached) descriptor set; returns its path. */
export function compileEnvoyProtos(opts: { force?: boolean } = {}): string {
  const out = join(CACHE_DIR, `envoy-${cacheKey()}.binpb`);
  if (!existsSync(out) || opts.force) buildDescriptorSet(out, { patch: true });
  return out;
}

let registry: FileRegistry | undefined;

/** Registry of Envoy's API (bootstrap, the extensions above, validate, xds, WKT). */
export function envoyRegistry(): FileRegistry {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(compileEnvoyProtos())));
  return registry;
}

export function envoyMessage(typeName: string): DescMessage {
  const desc = envoyRegistry().getMessage(typeName);
  if (!desc) throw new Error(`not in Envoy's descriptor set: ${typeName}`);
  return desc;
}

/**
 * Strict proto3-JSON parse, as Envoy loads its bootstrap: unknown fields, bad enum
 * names, an Any whose @type is not registered and a Duration written as a number throw.
 */
export function parseBootstrap(doc: unknown): Message {
  return fromJson(envoyMessage("envoy.config.bootstrap.v3.Bootstrap"), doc as JsonValue, { registry: envoyRegistry() });
}
