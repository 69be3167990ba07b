// What the contract (platform/policy.ts) gives the config: its services and the
// RPCs to route; refuses a contract the generated config cannot express.
import { Access, type MethodPolicy } from "../../platform/policy.js";
import type { EdgeSettings } from "./settings.js";

export interface ServiceRoute { name: string; internal: boolean; cluster: string }
export interface EdgeContract {
  /** Every service, by name; internal ones are answered 404. */
  services: ServiceRoute[];
  /** The services not marked (acme.edge.v1.internal). */
  routable: ServiceRoute[];
  /** The RPCs of the routable services. */
  routed: MethodPolicy[];
}

/** acme.auth.v1.AuthService -> "auth": the cluster a service package maps to. */
export function clusterOf(serviceTypeName: string): string {
  return serviceTypeName.split(".")[1];
}

export function httpRuleText(p: MethodPolicy): string {
  return p.httpRules
    .map((r) => r.pattern.case === "custom"
      ? `${r.pattern.value.kind} ${r.pattern.value.path}`
      : `${String(r.pattern.case).toUpperCase()} ${r.pattern.value}`)
    .join(", ");
}

export const accessName = (a: Access) => `ACCESS_${Access[a]}`;

export function edgeContract(s: EdgeSettings, policies: readonly MethodPolicy[]): EdgeContract {
  const services = [...new Map(policies.map((p) => [p.service.typeName, p])).values()]
    .map((p) => ({ name: p.service.typeName, internal: p.internal, cluster: clusterOf(p.service.typeName) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const routable = services.filter((x) => !x.internal);
  for (const svc of routable) {
    if (!s.upstreams[svc.cluster]) throw new Error(`envoy/settings.yaml: no upstream "${svc.cluster}" for ${svc.name}`);
  }
  const routed = policies.filter((p) => !p.internal);
  for (const p of routed) {
    if (p.access === Access.SERVICE) {
      throw new Error(`${p.path} is ACCESS_SERVICE on a routable service: Envoy only accepts audience ${s.jwt.audiences.join(",")}; mark the service internal or decide how the edge checks service tokens`);
    }
    if (p.httpRules.length === 0) throw new Error(`${p.path} is routable but has no google.api.http rule`);
  }
  return { services, routable, routed };
}
