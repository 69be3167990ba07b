// Edge policy read from the contract: each RPC's (acme.edge.v1.policy) and
// (google.api.http) options and each service's (acme.edge.v1.internal) flag.
// Envoy's config, the embedded edge and every service's auth check follow it.
import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Access, internal, policy as policyExt } from "../gen/acme/edge/v1/policy_pb.js";
import { http } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";
import { productServices } from "./registry.js";

export { Access };

export interface MethodPolicy {
  /** "/acme.auth.v1.AuthService/Login" */
  readonly path: string;
  readonly service: DescService;
  readonly method: DescMethod;
  /** ACCESS_UNSPECIFIED is normalised to ACCESS_AUTHENTICATED (deny by default). */
  readonly access: Access;
  readonly roles: readonly string[];
  /** Rate-limit class ("default" when the contract leaves it empty). */
  readonly rateLimit: string;
  /** True for services marked (acme.edge.v1.internal): no edge routes them. */
  readonly internal: boolean;
  /** The primary http rule plus additional_bindings; empty for internal RPCs. */
  readonly httpRules: readonly HttpRule[];
}

export function isInternal(service: DescService): boolean {
  return getOption(service, internal);
}

export function methodPolicy(service: DescService, method: DescMethod): MethodPolicy {
  const p = getOption(method, policyExt);
  const rules: HttpRule[] = [];
  if (hasOption(method, http)) {
    const rule = getOption(method, http);
    rules.push(rule, ...rule.additionalBindings);
  }
  return {
    path: `/${service.typeName}/${method.name}`,
    service,
    method,
    access: p.access === Access.UNSPECIFIED ? Access.AUTHENTICATED : p.access,
    roles: p.roles,
    rateLimit: p.rateLimit || "default",
    internal: isInternal(service),
    httpRules: rules,
  };
}

let cache: Map<string, MethodPolicy> | undefined;

/** Policy of every RPC of the product, keyed by gRPC path. */
export function allPolicies(): ReadonlyMap<string, MethodPolicy> {
  if (!cache) {
    cache = new Map();
    for (const service of productServices()) {
      for (const method of service.methods) {
        const mp = methodPolicy(service, method);
        cache.set(mp.path, mp);
      }
    }
  }
  return cache;
}

/** Policy for a gRPC path, or undefined for RPCs outside the product (health, reflection). */
export function policyFor(path: string): MethodPolicy | undefined {
  return allPolicies().get(path);
}
