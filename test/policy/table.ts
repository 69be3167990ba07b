// The policy table: every (method, principal kind) pair built from the
// descriptors, what the contract's policy decides for it, and how each entry
// point (gRPC and Connect to a service, REST on the embedded edge, REST
// through Envoy) is asked and answers. A new method is covered without new
// test code.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import type { Principal } from "../../platform/auth/principal.js";
import { Access, audienceOf, authorize, authorizeOwner, EMAIL_NOT_VERIFIED, type MethodPolicy, type PolicyTable } from "../../platform/policy.js";
import type { TokenMinter } from "../../services/auth/tokens.js";

/** "user" and "admin" have verified addresses; "unverified" is a user whose address is not verified yet. */
export type Kind = "anonymous" | "user" | "unverified" | "admin" | "service-granted" | "service-other";
export const KINDS: readonly Kind[] = ["anonymous", "user", "unverified", "admin", "service-granted", "service-other"];

/** What an entry point did with a call: let it reach its handler, or refuse it with a code. */
export type Outcome = { allowed: true } | { allowed: false; code: Code };

export interface Pair {
  policy: MethodPolicy;
  kind: Kind;
  /** The user the request acts on (owner-only RPCs): a real user who is not the caller. */
  ownerId?: string;
}

export function pairs(table: PolicyTable, ownerId: string): Pair[] {
  return table.all().flatMap((policy) => KINDS.map((kind) => ({ policy, kind, ownerId: policy.owner ? ownerId : undefined })));
}

/** The principal of a kind for a method (a new user id per call: per-user limits never mix pairs). */
export function principalOf(kind: Kind, policy: MethodPolicy): Principal | undefined {
  const service = (scopes: readonly string[]): Principal => ({
    kind: "service", clientId: "policy-table-client", scopes, audience: [audienceOf(policy.service.typeName)], rateLimit: 0, tokenId: randomUUID(), expiresAt: 0,
  });
  switch (kind) {
    case "anonymous": return undefined;
    case "user": return { kind: "user", userId: randomUUID(), sessionId: randomUUID(), roles: ["user"], emailVerified: true, tokenId: randomUUID(), expiresAt: 0 };
    case "unverified": return { kind: "user", userId: randomUUID(), sessionId: randomUUID(), roles: ["user"], emailVerified: false, tokenId: randomUUID(), expiresAt: 0 };
    case "admin": return { kind: "user", userId: randomUUID(), sessionId: randomUUID(), roles: ["admin"], emailVerified: true, tokenId: randomUUID(), expiresAt: 0 };
    case "service-granted": return service(policy.scopes.length ? policy.scopes : ["no.scope.needed"]);
    case "service-other": return service(["not.a.granted.scope"]);
  }
}

/** The contract's answer for a pair: authorize, then (owner-only) the owner rule on ownerId. */
export function expected(pair: Pair, principal: Principal | undefined): Outcome {
  const d = authorize(pair.policy, principal);
  if (!d.allow) return { allowed: false, code: d.code };
  if (pair.policy.owner && pair.policy.access !== Access.PUBLIC) {
    const o = authorizeOwner(pair.policy, principal, pair.ownerId!);
    if (!o.allow) return { allowed: false, code: o.code };
  }
  return { allowed: true };
}

/** A real token for a principal, signed by the system's own keys. */
export async function tokenFor(minter: TokenMinter, principal: Principal | undefined): Promise<string | undefined> {
  if (!principal) return undefined;
  if (principal.kind === "user") {
    const { userId, sessionId, roles, emailVerified } = principal;
    return (await minter.accessToken({ userId, sessionId, roles, emailVerified })).token;
  }
  return (await minter.serviceToken({ clientId: principal.clientId, audience: principal.audience[0], scopes: principal.scopes, rateLimit: 0 })).token;
}

/**
 * The refusals of authentication and policy (platform/auth/interceptor.ts, platform/policy.ts) and
 * of jwt_authn (Envoy, and the embedded edge's edge/authn.ts): a handler's own UNAUTHENTICATED
 * (a wrong password at Login) is an answer of a call the policy let through.
 */
const POLICY_REFUSALS = new Set([
  "missing bearer token", "malformed authorization header", "invalid access token", "a service token is required",
  "service token audience does not match", "scope not granted to this client", "a user access token is required", "permission denied",
  "user not found", EMAIL_NOT_VERIFIED,
]);
const isPolicyRefusal = (message: string) => POLICY_REFUSALS.has(message) || /^(Jwt|Audiences in Jwt|Jwks)/.test(message);
const REFUSAL_CODES = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.NotFound]);

/** An RPC's answer as an outcome: refused by policy (its code and message) or let through. */
export function rpcOutcome(pair: Pair, err: unknown): Outcome {
  if (err === undefined) return { allowed: true };
  const ce = ConnectError.from(err);
  if (REFUSAL_CODES.has(ce.code) && isPolicyRefusal(ce.rawMessage) && (ce.code !== Code.NotFound || pair.policy.owner)) return { allowed: false, code: ce.code };
  return { allowed: true };
}

const HTTP_OF: Partial<Record<Code, number>> = { [Code.Unauthenticated]: 401, [Code.PermissionDenied]: 403, [Code.NotFound]: 404 };
const CODE_OF: Record<number, Code> = { 401: Code.Unauthenticated, 403: Code.PermissionDenied, 404: Code.NotFound };

/** A REST answer (status and body: the JSON error's message, or jwt_authn's text) as an outcome. */
export function restOutcome(pair: Pair, status: number, body: string): Outcome {
  let message = body.trim();
  try {
    message = String((JSON.parse(body) as { message?: unknown }).message ?? message);
  } catch {
    // jwt_authn's refusals are plain text
  }
  const refused = (status === 401 || status === 403 || (pair.policy.owner && status === 404)) && isPolicyRefusal(message);
  return refused ? { allowed: false, code: CODE_OF[status] } : { allowed: true };
}

export const httpStatusOf = (code: Code) => HTTP_OF[code];

/** Call the pair's RPC (owner field set, everything else empty) with a token; resolves to the error, if any. */
export async function callRpc(transport: (token?: string) => Transport, pair: Pair, token: string | undefined): Promise<unknown> {
  const { method, service } = pair.policy;
  const input = create(method.input, pair.policy.owner ? ({ [pair.policy.owner.localName]: pair.ownerId } as never) : undefined);
  const client = createClient(service, transport(token)) as unknown as Record<string, (m: unknown, o: unknown) => Promise<unknown>>;
  try {
    await client[method.localName](input, { timeoutMs: 10_000 });
    return undefined;
  } catch (err) {
    return err;
  }
}

/** The pair's first REST route as a request: path variables filled (the owner field with ownerId), an empty JSON body. */
export function restRequest(pair: Pair): { method: string; path: string; body?: string } | undefined {
  const rule = pair.policy.httpRules[0];
  if (!rule || pair.policy.internal) return undefined;
  const pattern = rule.pattern;
  if (pattern.case === undefined || pattern.case === "custom") return undefined;
  const fill = (template: string) =>
    template.replace(/\{([^}=]+)(=[^}]*)?\}/g, (_, field: string) => (pair.policy.owner && field === pair.policy.owner.name ? pair.ownerId! : randomUUID()));
  return { method: pattern.case.toUpperCase(), path: fill(pattern.value), body: rule.body ? "{}" : undefined };
}

export function bearer(token?: string): Interceptor[] {
  return token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [];
}

export function describePair(p: Pair): string {
  return `${p.policy.path} as ${p.kind}`;
}
