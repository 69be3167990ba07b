// gen/openapi.json against the contract: every http rule of platform/policy.ts
// is an operation with the right method, path, parameters, bodies and
// security; internal services are absent; the proto3 JSON mapping holds.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DescMessage } from "@bufbuild/protobuf";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { Access } from "../../platform/policy.js";
import { policies } from "../../app/contract.js";
import { openApiFromDescriptorSet, renderOpenApi } from "../../scripts/openapi.js";
import { root } from "./support.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const text = readFileSync(join(root, "gen/openapi.json"), "utf8");
const doc = JSON.parse(text) as Obj;
const VERBS = ["get", "put", "post", "delete", "patch"];

function verbAndTemplate(rule: HttpRule): [string, string] {
  const p = rule.pattern;
  if (p.case === "custom") return [p.value.kind.toLowerCase(), p.value.path];
  assert.ok(p.case && VERBS.includes(p.case), `rule without a pattern`);
  return [p.case, p.value as string];
}
/** "/v1/orders/{order.id}", "/v1/{name=shelves/*}" -> OpenAPI path and variables. */
const openApiPath = (template: string) => template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");
const pathVars = (template: string) => [...template.matchAll(/\{([^}=]+)(=[^}]*)?\}/g)].map((m) => m[1]);
const deref = (o: Obj): Obj => {
  if (!o?.$ref) return o;
  const parts = (o.$ref as string).replace(/^#\//, "").split("/");
  return parts.reduce((x: Obj, k) => x?.[k], doc);
};
const schemaRef = (m: DescMessage) => `#/components/schemas/${m.typeName}`;
const routed = [...policies.all()].filter((p) => !p.internal);

describe("OpenAPI (gen/openapi.json)", () => {
  it("is OpenAPI 3.1 and is exactly what scripts/openapi.ts makes of gen/api.binpb (deterministic)", () => {
    assert.equal(doc.openapi, "3.1.0");
    const bytes = readFileSync(join(root, "gen/api.binpb"));
    assert.equal(renderOpenApi(openApiFromDescriptorSet(bytes)), text, "run `npm run generate`");
  });

  it("lists every http rule of the contract with its method, path and security", () => {
    let rules = 0;
    for (const mp of routed) {
      assert.ok(mp.httpRules.length > 0, `${mp.path} has no google.api.http rule`);
      for (const rule of mp.httpRules) {
        rules++;
        const [verb, template] = verbAndTemplate(rule);
        const op = doc.paths[openApiPath(template)]?.[verb];
        assert.ok(op, `${verb.toUpperCase()} ${template} (${mp.path}) missing`);
        assert.equal(op["x-acme-rpc"], mp.path);
        if (mp.access === Access.PUBLIC) {
          assert.deepEqual(op.security, [], `${mp.path} is public`);
          assert.equal(op.responses["401"], undefined);
        } else {
          assert.deepEqual(op.security, [{ bearerAuth: [] }], `${mp.path} needs a bearer token`);
          assert.ok(op.responses["401"], `${mp.path} documents 401`);
        }
        assert.deepEqual(op["x-acme-policy"].roles, [...mp.roles]);
        assert.equal(op["x-acme-policy"].rateLimit, mp.rateLimit);
        assert.equal(op["x-acme-policy"].owner, mp.owner?.name);
      }
    }
    const ops = Object.values(doc.paths as Obj).flatMap((item) => Object.keys(item).filter((k) => VERBS.includes(k)));
    assert.equal(ops.length, rules, "no operation without a rule");
    assert.ok(rules >= 20, `${rules} rules`);
  });

  it("leaves out internal services", () => {
    const rpcs = Object.values(doc.paths as Obj).flatMap((item) => Object.values(item as Obj).map((op) => op["x-acme-rpc"] as string));
    for (const mp of policies.all()) {
      if (mp.internal) assert.ok(!rpcs.includes(mp.path), `${mp.path} is internal`);
    }
    assert.ok(!JSON.stringify(doc).includes("InternalService"));
  });

  it("maps path variables, query parameters, bodies and responses per rule", () => {
    for (const mp of routed) {
      for (const rule of mp.httpRules) {
        const [verb, template] = verbAndTemplate(rule);
        const op = doc.paths[openApiPath(template)][verb];
        const where = `${verb.toUpperCase()} ${template}`;
        const params = (op.parameters ?? []) as Obj[];
        const vars = pathVars(template);
        assert.deepEqual(params.filter((p) => p.in === "path").map((p) => p.name), vars, `${where} path params`);
        for (const p of params.filter((p) => p.in === "path")) assert.equal(p.required, true);
        const input = mp.method.input;
        if (rule.body === "") {
          assert.equal(op.requestBody, undefined, `${where} has no body`);
          // Every top-level non-path field is a query parameter (JSON name).
          const expected = input.fields.filter((f) => !vars.includes(f.name) && f.fieldKind !== "message").map((f) => f.jsonName);
          const query = params.filter((p) => p.in === "query").map((p) => p.name);
          for (const q of expected) assert.ok(query.includes(q), `${where} query ${q} in ${query}`);
        } else if (rule.body === "*") {
          assert.ok(op.requestBody, `${where} has a body`);
          assert.equal(params.filter((p) => p.in === "query").length, 0, `${where}: body "*" leaves no query params`);
          const schema = op.requestBody.content["application/json"].schema;
          if (vars.length === 0) assert.equal(schema.$ref, schemaRef(input));
        } else {
          const field = input.fields.find((f) => f.name === rule.body)!;
          assert.equal(field.fieldKind, "message");
          assert.equal(op.requestBody.content["application/json"].schema.$ref, schemaRef(field.message!));
          const query = params.filter((p) => p.in === "query").map((p) => p.name);
          for (const f of input.fields.filter((f) => f.name !== rule.body && !vars.includes(f.name))) {
            assert.ok(query.some((q) => q === f.jsonName || q.startsWith(`${f.jsonName}.`)), `${where} query ${f.jsonName}`);
          }
        }
        const ok = op.responses["200"].content;
        const output = mp.method.output;
        // Envoy's transcoder refuses response_body for non-HttpBody fields: the contract has none,
        // every answer is the whole response message.
        assert.equal(rule.responseBody, "", `${where} has no response_body`);
        if (output.typeName === "google.api.HttpBody") {
          assert.ok(Object.keys(ok).length > 0, `${where} raw body has a media type`);
        } else {
          assert.deepEqual(Object.keys(ok), ["application/json"], `${where} answers JSON`);
          assert.equal(ok["application/json"].schema.$ref, schemaRef(output), `${where} response`);
        }
        assert.equal(deref(op.responses.default).content["application/json"].schema.$ref, "#/components/schemas/google.rpc.Status");
      }
    }
  });

  it("uses the proto3 JSON mapping in the schemas", () => {
    const s = doc.components.schemas as Obj;
    const order = s["acme.order.v1.Order"].properties;
    assert.deepEqual(Object.keys(order), [
      "id", "userId", "product", "quantity", "unitPriceCents", "totalCents", "status", "requestId", "ownerDeleted", "createdAt", "updatedAt", "lines", "total",
    ]);
    assert.equal(order.unitPriceCents.type, "string", "int64 is a string");
    assert.equal(order.unitPriceCents.format, "int64");
    assert.equal(order.unitPriceCents.deprecated, true, "replaced by lines");
    assert.equal(order.quantity.type, "integer");
    assert.equal(order.createdAt.type, "string");
    assert.equal(order.createdAt.format, "date-time");
    assert.equal(order.ownerDeleted.type, "boolean");
    const status = deref(order.status);
    assert.equal(status.type, "string");
    assert.deepEqual(status.enum.slice(0, 2), ["ORDER_STATUS_UNSPECIFIED", "ORDER_STATUS_PENDING"]);
    assert.equal(s["acme.auth.v1.Tokens"].properties.accessToken.type, "string");
    assert.equal(s["acme.auth.v1.ListSessionsResponse"].properties.sessions.type, "array");
    const updateMask = (doc.paths["/v1/users/me"].patch.parameters as Obj[]).find((p) => p.name === "updateMask")!;
    assert.equal(updateMask.in, "query");
    assert.equal(updateMask.schema.type, "string", "FieldMask is a string");
    const list = doc.paths["/v1/orders"].get.parameters as Obj[];
    assert.deepEqual(list.map((p) => p.name), ["pageSize", "pageToken", "status", "userId"]);
    assert.equal(deref(list[2].schema).type, "string", "enum query param by name");
    // Comments become descriptions.
    assert.match(s["acme.order.v1.CreateOrderRequest"].properties.requestId.description, /Idempotency key/);
    assert.match(doc.paths["/v1/orders"].post.summary, /Create an order/);
  });

  it("documents the answers of the user and order RPCs as their response messages: {\"user\": ...}, {\"order\": ...}", () => {
    const answers: [string, string, string, string][] = [
      ["/v1/users/me", "get", "acme.user.v1.GetMeResponse", "acme.user.v1.User"],
      ["/v1/users/me", "patch", "acme.user.v1.UpdateMeResponse", "acme.user.v1.User"],
      ["/v1/users/{id}", "get", "acme.user.v1.GetUserResponse", "acme.user.v1.User"],
      ["/v1/users/{user.id}", "patch", "acme.user.v1.UpdateUserResponse", "acme.user.v1.User"],
      ["/v1/orders", "post", "acme.order.v1.CreateOrderResponse", "acme.order.v1.Order"],
      ["/v1/orders/{id}", "get", "acme.order.v1.GetOrderResponse", "acme.order.v1.Order"],
      ["/v1/orders/{id}:cancel", "post", "acme.order.v1.CancelOrderResponse", "acme.order.v1.Order"],
      ["/v1/orders/{order.id}", "patch", "acme.order.v1.UpdateOrderResponse", "acme.order.v1.Order"],
    ];
    for (const [path, verb, response, inner] of answers) {
      const op = doc.paths[path]?.[verb];
      assert.ok(op, `${verb.toUpperCase()} ${path}`);
      const schema = op.responses["200"].content["application/json"].schema;
      assert.equal(schema.$ref, `#/components/schemas/${response}`, `${verb.toUpperCase()} ${path}`);
      const field = inner.endsWith(".User") ? "user" : "order";
      const props = deref(schema).properties as Obj;
      assert.deepEqual(Object.keys(props), [field], response);
      assert.equal(props[field].$ref, `#/components/schemas/${inner}`, response);
    }
  });

  it("describes errors as {code, message, details} and the JWKS as a raw JSON body", () => {
    const status = doc.components.schemas["google.rpc.Status"];
    assert.deepEqual(Object.keys(status.properties), ["code", "message", "details"]);
    assert.equal(status.properties.code.type, "integer");
    assert.equal(deref(status.properties.details.items).required[0], "@type");
    // The edge's own refusals (400, 401, 403, 404, 429) are the same JSON as the services' errors.
    for (const name of ["BadRequest", "Unauthenticated", "PermissionDenied", "NotFound", "TooManyRequests", "Error"]) {
      assert.equal(doc.components.responses[name].content["application/json"].schema.$ref, "#/components/schemas/google.rpc.Status", name);
    }
    const jwks = doc.paths["/.well-known/jwks.json"].get;
    assert.deepEqual(jwks.security, []);
    assert.equal(jwks.responses["200"].content["application/jwk-set+json"].schema.required[0], "keys");
    assert.deepEqual(doc.components.securitySchemes.bearerAuth, {
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
      description: doc.components.securitySchemes.bearerAuth.description,
    });
  });

  it("has only resolvable $refs and unique operationIds", () => {
    const ids = new Set<string>();
    const walk = (o: unknown, at: string) => {
      if (Array.isArray(o)) return o.forEach((x, i) => walk(x, `${at}/${i}`));
      if (!o || typeof o !== "object") return;
      const obj = o as Obj;
      if (typeof obj.$ref === "string") assert.ok(deref(obj), `${at}: ${obj.$ref} does not resolve`);
      if (typeof obj.operationId === "string") {
        assert.ok(!ids.has(obj.operationId), `duplicate ${obj.operationId}`);
        ids.add(obj.operationId);
      }
      for (const [k, v] of Object.entries(obj)) walk(v, `${at}/${k}`);
    };
    walk(doc, "#");
    // Every path template variable of each operation is declared.
    for (const [path, item] of Object.entries(doc.paths as Obj)) {
      for (const op of Object.values(item as Obj)) {
        const declared = ((op.parameters ?? []) as Obj[]).filter((p) => p.in === "path").map((p) => p.name);
        assert.deepEqual(declared, pathVars(path), path);
      }
    }
  });
});
