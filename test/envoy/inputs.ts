// The files the envoy tests check, loaded fresh (tests mutate deep copies), and
// accessors into the Envoy bootstrap.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { parse } from "yaml";
import { type MethodPolicy } from "../../platform/policy.js";
import { policies } from "../../app/contract.js";
import { loadSettings, type EdgeSettings } from "../../scripts/envoy-config.js";
import { toolSpecs, type ToolName, type ToolSpec } from "../../scripts/tools/index.js";
import { ROOT } from "./envoy-protos.js";

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Inputs {
  envoy: Json;
  ratelimit: Json;
  compose: Json;
  settings: EdgeSettings;
  /** gen/api.binpb, the descriptor set Envoy's transcoder loads. */
  api: FileRegistry;
  policies: MethodPolicy[];
  /** Files in envoy/ratelimit (the ratelimit service loads them all). */
  ratelimitDir: string[];
  /** The pinned tools (scripts/tools/versions.json). */
  tools: Record<ToolName, ToolSpec>;
}

export const readRepo = (path: string) => readFileSync(join(ROOT, path), "utf8");

let api: FileRegistry | undefined;

export function loadInputs(): Inputs {
  api ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(join(ROOT, "gen/api.binpb"))));
  return {
    envoy: parse(readRepo("envoy/envoy.yaml")),
    ratelimit: parse(readRepo("envoy/ratelimit/config.yaml")),
    compose: parse(readRepo("docker-compose.yml"), { merge: true }),
    settings: loadSettings(),
    api,
    policies: [...policies.all()],
    ratelimitDir: readdirSync(join(ROOT, "envoy/ratelimit")).sort(),
    tools: toolSpecs(),
  };
}

/** A deep copy to break on purpose (the registry and policies are shared, read-only). */
export function copyOf(i: Inputs): Inputs {
  return { ...i, envoy: structuredClone(i.envoy), ratelimit: structuredClone(i.ratelimit), compose: structuredClone(i.compose), settings: structuredClone(i.settings), ratelimitDir: [...i.ratelimitDir], tools: structuredClone(i.tools) };
}

/** The plain listener ("edge") and the HTTPS one ("edge_tls"): the same API (docs/tls.md). */
export const LISTENERS = ["edge", "edge_tls"] as const;
export type ListenerName = (typeof LISTENERS)[number];

export function listener(envoy: Json, name: ListenerName = "edge"): Json {
  const listeners = envoy.static_resources?.listeners ?? [];
  const names = listeners.map((l: Json) => l.name);
  if (names.length !== LISTENERS.length || !LISTENERS.every((n) => names.includes(n))) throw new Error(`expected listeners ${LISTENERS.join(", ")}, got ${names.join(", ")}`);
  return listeners.find((l: Json) => l.name === name);
}

/** The connection manager of a listener (the plain one unless told). */
export function hcm(envoy: Json, name: ListenerName = "edge"): Json {
  const l = listener(envoy, name);
  if ((l.filter_chains ?? []).length !== 1) throw new Error(`${name}: expected one filter chain`);
  const f = l.filter_chains[0].filters?.find((x: Json) => x.name === "envoy.filters.network.http_connection_manager");
  if (!f) throw new Error(`no http_connection_manager on the listener ${name}`);
  return f.typed_config;
}

export const httpFilters = (envoy: Json): Json[] => hcm(envoy).http_filters ?? [];

export function filterConfig(envoy: Json, name: string): Json {
  const f = httpFilters(envoy).find((x) => x.name === name);
  if (!f) throw new Error(`no HTTP filter ${name}`);
  return f.typed_config;
}

export function vhost(envoy: Json): Json {
  const hosts = hcm(envoy).route_config?.virtual_hosts ?? [];
  if (hosts.length !== 1) throw new Error(`expected one virtual host, got ${hosts.length}`);
  return hosts[0];
}

export const clusters = (envoy: Json): Json[] => envoy.static_resources?.clusters ?? [];

/** host:port endpoints of a cluster. */
export function endpointsOf(cluster: Json): { host: string; port: number }[] {
  return (cluster.load_assignment?.endpoints ?? []).flatMap((e: Json) =>
    (e.lb_endpoints ?? []).map((l: Json) => ({
      host: l.endpoint.address.socket_address.address,
      port: l.endpoint.address.socket_address.port_value,
    })));
}

export const JWT = "envoy.filters.http.jwt_authn";
export const TRANSCODER = "envoy.filters.http.grpc_json_transcoder";
export const RATELIMIT = "envoy.filters.http.ratelimit";
