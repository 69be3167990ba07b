// Access policy read from the contract, and the one decision made from it.
// Each RPC's (acme.edge.v1.policy) and (google.api.http) options and each
// service's (acme.edge.v1.internal) flag become a MethodPolicy; a PolicyTable
// holds those of the services a host was given (app/contract.ts builds the
// product's once). `authorize` answers "may this principal call this method"
// for every entry point: the services' auth interceptor (gRPC, Connect,
// gRPC-Web and the embedded edge's REST calls all end there) and, through
// scripts/envoy-config, Envoy's jwt_authn rules and rate-limit descriptors.
import { getOption, hasOption, type DescField, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { Access, internal, policy as policyExt } from "../gen/acme/edge/v1/policy_pb.js";
import { http } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";
import { principalKey, type Principal, type UserPrincipal } from "./auth/principal.js";

export { Access };

export interface MethodPolicy {
  /** "/acme.auth.v1.AuthService/Login" */
  readonly path: string;
  readonly service: DescService;
  readonly method: DescMethod;
  /** ACCESS_UNSPECIFIED is normalised to ACCESS_AUTHENTICATED (deny by default). */
  readonly access: Access;
  /** Roles needed to call; with `owner`, the roles that may act for someone else. */
  readonly roles: readonly string[];
  /** ACCESS_SERVICE: a service token needs one of these scopes. */
  readonly scopes: readonly string[];
  /** Owner-only RPCs: the request field naming the user acted on. */
  readonly owner?: DescField;
  /** The caller's address must be verified (unless the table was built with verifiedEmail off). */
  readonly verifiedEmail: boolean;
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

/** How a table applies the contract: VERIFIED_EMAIL_POLICY=off builds it with verifiedEmail false (docs/accounts.md). */
export interface PolicyOptions {
  readonly verifiedEmail?: boolean;
}

export function methodPolicy(service: DescService, method: DescMethod, opts: PolicyOptions = {}): MethodPolicy {
  const p = getOption(method, policyExt);
  const rules: HttpRule[] = [];
  if (hasOption(method, http)) {
    const rule = getOption(method, http);
    rules.push(rule, ...rule.additionalBindings);
  }
  const path = `/${service.typeName}/${method.name}`;
  let owner: DescField | undefined;
  if (p.owner) {
    owner = method.input.fields.find((f) => f.name === p.owner && f.fieldKind === "scalar");
    if (!owner) throw new Error(`${path}: policy owner "${p.owner}" is not a scalar field of ${method.input.typeName}`);
  }
  return {
    path,
    service,
    method,
    access: p.access === Access.UNSPECIFIED ? Access.AUTHENTICATED : p.access,
    roles: p.roles,
    scopes: p.scopes,
    owner,
    verifiedEmail: p.verifiedEmail && opts.verifiedEmail !== false,
    rateLimit: p.rateLimit || "default",
    internal: isInternal(service),
    httpRules: rules,
  };
}

/** The policies of a set of services, keyed by gRPC path; built once per process. */
export interface PolicyTable {
  get(path: string): MethodPolicy | undefined;
  all(): readonly MethodPolicy[];
  readonly services: readonly DescService[];
}

export function policyTable(services: Iterable<DescService>, opts: PolicyOptions = {}): PolicyTable {
  const list = [...services];
  const byPath = new Map<string, MethodPolicy>();
  for (const s of list) for (const m of s.methods) byPath.set(`/${s.typeName}/${m.name}`, methodPolicy(s, m, opts));
  const all = [...byPath.values()];
  return { get: (path) => byPath.get(path), all: () => all, services: list };
}

/** The policy of the call in progress, looked up once at its first interceptor. */
const callPolicyKey = createContextKey<MethodPolicy | undefined>(undefined, { description: "policy of this call" });

/**
 * The policy of a call (undefined for RPCs outside the table: health,
 * reflection), looked up once per call and kept in its context values. The
 * embedded edge sets it when it matches a REST route (`setCallPolicy`).
 */
export function policyOfCall(
  table: PolicyTable,
  req: { readonly service: DescService; readonly method: DescMethod; readonly contextValues: ContextValues },
): MethodPolicy | undefined {
  const known = req.contextValues.get(callPolicyKey);
  if (known && known.method === req.method) return known;
  const found = table.get(`/${req.service.typeName}/${req.method.name}`);
  if (found) req.contextValues.set(callPolicyKey, found);
  return found;
}

export function setCallPolicy(values: ContextValues, policy: MethodPolicy): void {
  values.set(callPolicyKey, policy);
}

/** What the policy says about one call. */
export type Decision =
  | { readonly allow: true }
  | { readonly allow: false; readonly code: Code; readonly message: string };

const ALLOW: Decision = { allow: true };

/** The refusal of a verified_email RPC to an access token without email_verified. */
export const EMAIL_NOT_VERIFIED = "verify your email address first (then refresh the access token)";
const deny = (code: Code, message: string): Decision => ({ allow: false, code, message });

/** Service-token audience of a service: "acme.user.v1.UserInternalService" -> "acme-user". */
export function audienceOf(serviceTypeName: string): string {
  const [org, svc] = serviceTypeName.split(".");
  return `${org}-${svc}`;
}

/**
 * May `principal` (undefined: no token) call the method of `policy` with
 * `request`? Authentication (is the token valid) happens before; this is the
 * rest, the same at every entry point.
 */
export function authorize(policy: MethodPolicy, principal: Principal | undefined): Decision {
  if (policy.access === Access.PUBLIC) return ALLOW;
  if (!principal) return deny(Code.Unauthenticated, "missing bearer token");
  if (policy.access === Access.SERVICE) {
    if (principal.kind !== "service") return deny(Code.PermissionDenied, "a service token is required");
    if (!principal.audience.includes(audienceOf(policy.service.typeName))) {
      return deny(Code.PermissionDenied, "service token audience does not match");
    }
    if (!policy.scopes.some((s) => principal.scopes.includes(s))) {
      return deny(Code.PermissionDenied, "scope not granted to this client");
    }
    return ALLOW;
  }
  if (principal.kind !== "user") return deny(Code.PermissionDenied, "a user access token is required");
  // Unverified: refused before anything else is decided (the client refreshes its token after verifying).
  if (policy.verifiedEmail && !principal.emailVerified) return deny(Code.PermissionDenied, EMAIL_NOT_VERIFIED);
  // Owner-only: decided by authorizeOwner once the handler has validated the id (a malformed id
  // is INVALID_ARGUMENT on its field, whoever asks); the handler calls requireOwner.
  if (policy.owner) return ALLOW;
  if (policy.roles.length && !policy.roles.some((r) => principal.roles.includes(r))) return deny(Code.PermissionDenied, "permission denied");
  return ALLOW;
}

/** Owner-only RPCs: may `principal` act on the user `ownerId`? Someone else's reads as missing (no oracle). */
export function authorizeOwner(policy: MethodPolicy, principal: Principal | undefined, ownerId: string): Decision {
  if (principal?.kind !== "user") return deny(Code.Unauthenticated, "a user access token is required");
  if (ownerId === principal.userId || policy.roles.some((r) => principal.roles.includes(r))) return ALLOW;
  return deny(Code.NotFound, "user not found");
}

/** Set on owner-only calls by the auth interceptor; requireOwner marks it, so a handler that forgets is caught. */
export const ownerCheckKey = createContextKey<{ done: boolean } | undefined>(undefined, { description: "owner check of this call" });

/**
 * In the handler of an owner-only RPC, once its owner field is validated: the
 * caller, if the contract's policy lets them act on `ownerId`; NOT_FOUND otherwise.
 */
export function requireOwner(ctx: HandlerContext, ownerId: string): UserPrincipal {
  const policy = ctx.values.get(callPolicyKey);
  const principal = ctx.values.get(principalKey);
  if (!policy?.owner) throw new ConnectError(`${ctx.method.name} has no owner in its policy`, Code.Internal);
  const decision = authorizeOwner(policy, principal, ownerId);
  if (!decision.allow) throw new ConnectError(decision.message, decision.code);
  const check = ctx.values.get(ownerCheckKey);
  if (check) check.done = true;
  return principal as UserPrincipal;
}
