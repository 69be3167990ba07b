// Path templates, the route trie's precedence, and the contract's routes.
import { strict as assert } from "node:assert";
import { create } from "@bufbuild/protobuf";
import { HttpRuleSchema } from "../../gen/google/api/http_pb.js";
import { type MethodPolicy } from "../../platform/policy.js";
import { policies as productPolicies } from "../../app/contract.js";
import { compileRoutes, RouteTable } from "../../edge/routes.js";
import { parseTemplate } from "../../platform/http-template.js";
import { normalisePath, parseQuery, unescape } from "../../edge/url.js";

describe("edge routes: templates", () => {
  it("parses variables, nested field paths and verbs", () => {
    assert.deepEqual(parseTemplate("/v1/orders/{id}:cancel"), {
      source: "/v1/orders/{id}:cancel",
      segments: ["v1", "orders", "*"],
      variables: [{ fieldPath: ["id"], start: 2, end: 3 }],
      verb: "cancel",
    });
    assert.deepEqual(parseTemplate("/v1/users/{user.id}").variables, [{ fieldPath: ["user", "id"], start: 2, end: 3 }]);
    assert.deepEqual(parseTemplate("/v1/{name=shelves/*/books/*}").segments, ["v1", "shelves", "*", "books", "*"]);
    assert.deepEqual(parseTemplate("/v1/{name=shelves/*/books/*}").variables, [{ fieldPath: ["name"], start: 1, end: 5 }]);
    assert.deepEqual(parseTemplate("/.well-known/jwks.json").segments, [".well-known", "jwks.json"]);
  });

  it("counts the end of variables with ** from the end of the path", () => {
    assert.deepEqual(parseTemplate("/v1/{path=**}").variables, [{ fieldPath: ["path"], start: 1, end: -1 }]);
    assert.deepEqual(parseTemplate("/v1/{file=files/**}/raw").variables, [{ fieldPath: ["file"], start: 1, end: -2 }]);
  });

  it("refuses malformed templates", () => {
    for (const t of ["v1/x", "/v1/{id", "/v1/**/**", "/v1/{a}/{a}", "/v1/x/", "/v1/{a-b}", "/v1/{a=}", "/v1/**/*", "/v1/{x={y}}", "/v1/x:"]) {
      assert.throws(() => parseTemplate(t), /invalid http path template/, t);
    }
  });
});

describe("edge routes: matching", () => {
  const table = new RouteTable<string>();
  table.add("GET", "/v1/users/me", "GetMe");
  table.add("PATCH", "/v1/users/me", "UpdateMe");
  table.add("GET", "/v1/users/{id}", "GetUser");
  table.add("DELETE", "/v1/users/{id}", "DeleteUser");
  table.add("GET", "/v1/users/{id}/orders/*", "UserOrder");
  table.add("POST", "/v1/orders/{id}:cancel", "Cancel");
  table.add("GET", "/v1/orders/{id}", "GetOrder");
  table.add("GET", "/v1/files/{path=**}", "GetFile");
  table.add("GET", "/v1/blobs/{path=**}/raw", "GetRaw");

  const hit = (method: string, path: string) => {
    const m = table.lookup(method, normalisePath(path));
    return m && [m.value, Object.fromEntries(m.bindings.map((b) => [b.fieldPath.join("."), b.value]))];
  };

  it("tries literals before variables, and backtracks when the method does not match", () => {
    assert.deepEqual(hit("GET", "/v1/users/me"), ["GetMe", {}]);
    assert.deepEqual(hit("DELETE", "/v1/users/me"), ["DeleteUser", { id: "me" }]);
    assert.deepEqual(hit("GET", "/v1/users/u1"), ["GetUser", { id: "u1" }]);
    assert.deepEqual(hit("GET", "/v1/users/me/orders/o1"), ["UserOrder", { id: "me" }]);
    assert.equal(hit("POST", "/v1/users/me"), undefined);
  });

  it("cuts off registered verbs only", () => {
    assert.deepEqual(hit("POST", "/v1/orders/o1:cancel"), ["Cancel", { id: "o1" }]);
    assert.deepEqual(hit("GET", "/v1/orders/o1:archive"), ["GetOrder", { id: "o1:archive" }]);
    assert.equal(hit("GET", "/v1/orders/o1:cancel"), undefined);
  });

  it("matches ** across segments, keeping reserved characters encoded in multi-segment values", () => {
    assert.deepEqual(hit("GET", "/v1/files/a/b%20c/d%2Ce"), ["GetFile", { path: "a/b c/d%2Ce" }]);
    assert.deepEqual(hit("GET", "/v1/files/a"), ["GetFile", { path: "a" }]);
    assert.deepEqual(hit("GET", "/v1/blobs/x/y/raw"), ["GetRaw", { path: "x/y" }]);
  });

  it("decodes single-segment values completely", () => {
    assert.deepEqual(hit("GET", "/v1/users/a%2Cb%3Ac%20%C3%A9"), ["GetUser", { id: "a,b:c é" }]);
  });

  it("lists the methods a path accepts (405) and claims only its own prefixes", () => {
    assert.deepEqual(table.allowedMethods(normalisePath("/v1/users/me")), ["DELETE", "GET", "PATCH"]);
    assert.deepEqual(table.allowedMethods(normalisePath("/v1/orders/o1:cancel")), ["POST"]);
    assert.deepEqual(table.allowedMethods(normalisePath("/v1/nothing")), []);
    assert.equal(table.claims("/v1/anything"), true);
    assert.equal(table.claims("/health"), false);
    assert.equal(table.claims("/acme.user.v1.UserService/GetMe"), false);
  });

  it("refuses a duplicate rule", () => {
    const t = new RouteTable<number>();
    t.add("GET", "/a/{x}", 1);
    assert.throws(() => t.add("GET", "/a/{y}", 2), /duplicate http rule/);
  });
});

describe("edge routes: URLs", () => {
  it("normalises paths like Envoy (merge slashes, dot segments) and rejects escaped slashes", () => {
    assert.equal(normalisePath("/v1//users/./me/../me/"), "/v1/users/me/");
    assert.equal(normalisePath("/"), "/");
    assert.throws(() => normalisePath("/v1/users/a%2fb"), /escaped slashes/);
    assert.throws(() => normalisePath("/v1/users/a%5Cb"), /escaped slashes/);
  });

  it("parses query strings like the transcoder (no name, no '=': ignored; '+' kept)", () => {
    assert.deepEqual(parseQuery("a=1&b.c=x%20y+z&flag&=v&d="), [
      { name: "a", value: "1" },
      { name: "b.c", value: "x y+z" },
      { name: "d", value: "" },
    ]);
    assert.equal(unescape("%zz%4"), "%zz%4");
  });
});

describe("edge routes: the contract", () => {
  const { table, routes } = compileRoutes(productPolicies.all());
  const policies = [...productPolicies.all()];

  it("compiles every google.api.http rule of every public service, and none of internal services", () => {
    const expected = policies.filter((p) => !p.internal).reduce((n, p) => n + p.httpRules.length, 0);
    assert.ok(expected > 0);
    assert.equal(routes.length, expected);
    for (const p of policies.filter((x) => x.internal)) {
      assert.equal(routes.filter((r) => r.policy === p).length, 0, p.path);
    }
  });

  it("reaches every route with its own method and path", () => {
    for (const r of routes) {
      const path = r.template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "x1").replace(/\*\*?/g, "x1");
      const m = table.lookup(r.httpMethod, normalisePath(path));
      assert.equal(m?.value, r, `${r.httpMethod} ${r.template}`);
    }
  });

  it("has no response_body (Envoy's transcoder refuses it for non-HttpBody fields): REST answers are whole response messages", () => {
    for (const r of routes) assert.equal(r.responseBody, undefined, `${r.httpMethod} ${r.template}`);
    // The RPCs that used to answer with a single field: the field is now inside the answer, {"user": ...} / {"order": ...}.
    const wrapped: [string, string, string][] = [
      ["GET", "/v1/users/me", "user"],
      ["PATCH", "/v1/users/me", "user"],
      ["GET", "/v1/users/{id}", "user"],
      ["PATCH", "/v1/users/{user.id}", "user"],
      ["POST", "/v1/orders", "order"],
      ["GET", "/v1/orders/{id}", "order"],
      ["POST", "/v1/orders/{id}:cancel", "order"],
      ["PATCH", "/v1/orders/{order.id}", "order"],
    ];
    for (const [method, template, field] of wrapped) {
      const r = routes.find((x) => x.httpMethod === method && x.template === template);
      assert.ok(r, `${method} ${template}`);
      assert.equal(r.responseBody, undefined, `${method} ${template}`);
      assert.equal(r.output.fields.find((f) => f.jsonName === field)?.fieldKind, "message", `${method} ${template}: ${r.output.typeName}.${field}`);
    }
  });

  it("refuses rules whose fields do not exist or do not fit", () => {
    const base = productPolicies.get("/acme.user.v1.UserService/UpdateUser")!;
    const withRule = (rule: Parameters<typeof create<typeof HttpRuleSchema>>[1]): MethodPolicy => ({
      ...base,
      httpRules: [create(HttpRuleSchema, rule)],
    });
    const bad: [MethodPolicy, RegExp][] = [
      [withRule({ pattern: { case: "get", value: "/v1/x/{user}" } }), /must be a singular scalar or enum/],
      [withRule({ pattern: { case: "get", value: "/v1/x/{nope}" } }), /no field "nope"/],
      [withRule({ pattern: { case: "patch", value: "/v1/x" }, body: "usr" }), /body: no field "usr"/],
      [withRule({ pattern: { case: "patch", value: "/v1/x" }, responseBody: "u" }), /response_body: no field "u"/],
    ];
    for (const [p, message] of bad) assert.throws(() => compileRoutes([p]), message);
  });
});
