// The REST routes of the contract: every google.api.http rule (and its
// additional_bindings) of every RPC outside internal services, compiled into a
// path trie searched like grpc-httpjson-transcoding's PathMatcher (Envoy's
// transcoder): depth first, a literal segment before "*" before "**", and the
// HTTP method (plus custom verb) decides at the leaf, so `GET /v1/users/me`
// is GetMe while `DELETE /v1/users/me` falls back to DeleteUser{id: "me"}.
import type { DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import type { HttpRule } from "../gen/google/api/http_pb.js";
import type { MethodPolicy } from "../platform/policy.js";
import { MULTI, parseTemplate, SINGLE, variableEnd, type PathTemplate } from "../platform/http-template.js";
import { splitPath, unescape } from "./url.js";

const LIT = "\0"; // literal children are stored under LIT + text, wildcards under "*" / "**"

class Node<T> {
  readonly children = new Map<string, Node<T>>();
  /** A "**" node: it may consume any number of further segments. */
  wildcard = false;
  /** Leaf values by HTTP method + verb ("GET", "POSTcancel"). */
  readonly results = new Map<string, T>();
}

export interface Binding {
  readonly fieldPath: readonly string[];
  readonly value: string;
}

export interface Match<T> {
  readonly value: T;
  readonly template: PathTemplate;
  /** Values of the template's variables, percent-decoded. */
  readonly bindings: readonly Binding[];
}

/** A path trie from (HTTP method, template) to values. */
export class RouteTable<T> {
  private readonly root = new Node<{ value: T; template: PathTemplate }>();
  private readonly verbs = new Set<string>();
  private readonly methods = new Set<string>();
  private readonly firstSegments = new Set<string>();
  private claimsAll = false;

  add(httpMethod: string, templateSource: string, value: T): void {
    const template = parseTemplate(templateSource);
    let node = this.root;
    for (const seg of template.segments) {
      const key = seg === SINGLE || seg === MULTI ? seg : LIT + seg;
      let child = node.children.get(key);
      if (!child) node.children.set(key, (child = new Node()));
      if (seg === MULTI) child.wildcard = true;
      node = child;
    }
    const key = httpMethod + template.verb;
    if (node.results.has(key)) throw new Error(`duplicate http rule: ${httpMethod} ${templateSource}`);
    node.results.set(key, { value, template });
    if (template.verb) this.verbs.add(template.verb);
    this.methods.add(httpMethod);
    const first = template.segments[0];
    if (first === SINGLE || first === MULTI) this.claimsAll = true;
    else this.firstSegments.add(first);
  }

  /**
   * Does this table own the path (its first segment is the first literal of some
   * template)? Other paths (/health, /metrics, gRPC paths) are left to others.
   */
  claims(path: string): boolean {
    if (this.claimsAll) return true;
    const first = path.split("/")[1] ?? "";
    return this.firstSegments.has(first);
  }

  /** The route for a method and a normalised path (no query), or undefined. */
  lookup(httpMethod: string, path: string): Match<T> | undefined {
    const { parts, verb } = splitPath(path, this.verbs);
    const hit = find(this.root, parts, 0, httpMethod + verb) ?? find(this.root, parts, 0, "*" + verb);
    if (!hit) return undefined;
    return { value: hit.value, template: hit.template, bindings: bindingsOf(hit.template, parts) };
  }

  /** HTTP methods some route accepts for this path (for 405 and Allow). */
  allowedMethods(path: string): string[] {
    const { parts, verb } = splitPath(path, this.verbs);
    return [...this.methods].filter((m) => m !== "*" && find(this.root, parts, 0, m + verb)).sort();
  }
}

function find<V>(node: Node<V>, parts: readonly string[], i: number, key: string): V | undefined {
  if (i === parts.length) return node.results.get(key) ?? node.children.get(MULTI)?.results.get(key);
  const viaChild = (k: string) => {
    const c = node.children.get(k);
    return c && find(c, parts, i + 1, key);
  };
  const literal = viaChild(LIT + parts[i]);
  if (literal) return literal;
  // A "**" node consumes this segment and tries again from itself.
  if (node.wildcard) return find(node, parts, i + 1, key);
  return viaChild(SINGLE) ?? viaChild(MULTI);
}

function bindingsOf(template: PathTemplate, parts: readonly string[]): Binding[] {
  return template.variables.map((v) => {
    const end = variableEnd(v, parts.length);
    const multi = end - v.start > 1 || v.end < 0;
    const value = parts
      .slice(v.start, end)
      .map((p) => unescape(p, multi))
      .join("/");
    return { fieldPath: v.fieldPath, value };
  });
}

/** One REST route: an http rule of an RPC, resolved against its messages. */
export interface Route {
  readonly httpMethod: string;
  readonly template: string;
  readonly policy: MethodPolicy;
  readonly service: DescService;
  readonly method: DescMethod;
  readonly input: DescMessage;
  readonly output: DescMessage;
  /** "" (no body), "*" (the whole request) or the request field receiving the body. */
  readonly body: string;
  readonly bodyField?: readonly DescField[];
  /** The response field sent as the body (empty: the whole response). */
  readonly responseBody?: readonly DescField[];
}

export function ruleMethodAndPath(rule: HttpRule): { httpMethod: string; path: string } | undefined {
  const p = rule.pattern;
  switch (p.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      return { httpMethod: p.case.toUpperCase(), path: p.value };
    case "custom":
      return { httpMethod: p.value.kind.toUpperCase(), path: p.value.path };
    default:
      return undefined;
  }
}

/** Resolve "a.b" against a message; throws on unknown or non-message intermediate fields. */
export function resolveFieldPath(message: DescMessage, path: readonly string[], what: string): DescField[] {
  const out: DescField[] = [];
  let m: DescMessage | undefined = message;
  for (const name of path) {
    const f: DescField | undefined = m?.fields.find((x) => x.name === name || x.jsonName === name);
    if (!m || !f) throw new Error(`${what}: no field "${path.join(".")}" in ${message.typeName}`);
    out.push(f);
    m = f.fieldKind === "message" ? f.message : undefined;
  }
  return out;
}

export interface CompiledRoutes {
  readonly table: RouteTable<Route>;
  readonly routes: readonly Route[];
}

/** Compile the REST routes of the given RPC policies (app/contract.ts `policies.all()` for the product). */
export function compileRoutes(policies: Iterable<MethodPolicy>): CompiledRoutes {
  const table = new RouteTable<Route>();
  const routes: Route[] = [];
  for (const policy of policies) {
    if (policy.internal) continue; // never routable
    for (const rule of policy.httpRules) {
      const mp = ruleMethodAndPath(rule);
      if (!mp) continue;
      const where = `${policy.path} (${mp.httpMethod} ${mp.path})`;
      const input = policy.method.input;
      const output = policy.method.output;
      const template = parseTemplate(mp.path);
      for (const v of template.variables) {
        const fields = resolveFieldPath(input, v.fieldPath, where);
        const leaf = fields[fields.length - 1];
        if (leaf.fieldKind !== "scalar" && leaf.fieldKind !== "enum") {
          throw new Error(`${where}: path variable ${v.fieldPath.join(".")} must be a singular scalar or enum field`);
        }
      }
      const responseBody = rule.responseBody ? resolveFieldPath(output, rule.responseBody.split("."), `${where} response_body`) : undefined;
      // Envoy's grpc_json_transcoder refuses to start with response_body on any other field
      // ("not supported yet for non-HttpBody fields"): both edges must take the same contract.
      const last = responseBody?.at(-1);
      if (last && !(last.fieldKind === "message" && last.message.typeName === "google.api.HttpBody")) {
        throw new Error(`${where}: response_body "${rule.responseBody}" is not a google.api.HttpBody field (Envoy's transcoder refuses it)`);
      }
      const route: Route = {
        httpMethod: mp.httpMethod,
        template: mp.path,
        policy,
        service: policy.service,
        method: policy.method,
        input,
        output,
        body: rule.body,
        bodyField: rule.body && rule.body !== "*" ? resolveFieldPath(input, rule.body.split("."), `${where} body`) : undefined,
        responseBody,
      };
      table.add(mp.httpMethod, mp.path, route);
      routes.push(route);
    }
  }
  return { table, routes };
}
