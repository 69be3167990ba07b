// The transcoder on a test message with every kind of field the contract may
// grow (repeated, nested, bool, enum, int64, bytes, well-known types).
import { strict as assert } from "node:assert";
import { create, createFileRegistry, createRegistry, toJson, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  file_google_protobuf_wrappers as wrappers,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { registry as productRegistry } from "../../app/contract.js";
import { buildRequest, renderResponse, TranscodeError, type RequestShape } from "../../edge/transcode.js";
import { parseQuery } from "../../edge/url.js";

const field = (name: string, number: number, type: Type, extra: { label?: Label; typeName?: string; jsonName?: string } = {}) => ({
  name,
  number,
  type,
  label: extra.label ?? Label.OPTIONAL,
  typeName: extra.typeName,
  jsonName: extra.jsonName ?? name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
});

const file = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "edge_test.proto",
    package: "edgetest",
    syntax: "proto3",
    dependency: ["google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto", "google/api/httpbody.proto"],
    enumType: [{ name: "Colour", value: [{ name: "COLOUR_UNSPECIFIED", number: 0 }, { name: "COLOUR_RED", number: 1 }] }],
    messageType: [
      { name: "Inner", field: [field("page_size", 1, Type.INT32), field("tags", 2, Type.STRING, { label: Label.REPEATED })] },
      {
        name: "Req",
        field: [
          field("name", 1, Type.STRING),
          field("ids", 2, Type.INT64, { label: Label.REPEATED }),
          field("flag", 3, Type.BOOL),
          field("colour", 4, Type.ENUM, { typeName: ".edgetest.Colour" }),
          field("colours", 5, Type.ENUM, { label: Label.REPEATED, typeName: ".edgetest.Colour" }),
          field("inner", 6, Type.MESSAGE, { typeName: ".edgetest.Inner" }),
          field("since", 7, Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" }),
          field("maybe", 8, Type.MESSAGE, { typeName: ".google.protobuf.BoolValue" }),
          field("blob", 9, Type.BYTES),
          field("big", 10, Type.UINT64),
          field("ratio", 11, Type.DOUBLE),
          field("items", 12, Type.MESSAGE, { label: Label.REPEATED, typeName: ".edgetest.Inner" }),
        ],
      },
      {
        name: "Res",
        field: [field("inner", 1, Type.MESSAGE, { typeName: ".edgetest.Inner" }), field("count", 2, Type.INT64), field("body", 3, Type.MESSAGE, { typeName: ".google.api.HttpBody" })],
      },
    ],
  }),
  // wrappers.proto is not in the product's registry: take it from @bufbuild/protobuf's well-known types.
  (name) => productRegistry.getFile(name) ?? (name === "google/protobuf/wrappers.proto" ? wrappers : undefined),
);

const registry = createRegistry(productRegistry, file);
const Req = file.getMessage("edgetest.Req")!;
const Inner = file.getMessage("edgetest.Inner")!;
const Res = file.getMessage("edgetest.Res")!;

const shape = (body = "", bodyField?: string): RequestShape => ({
  input: Req,
  body,
  bodyField: bodyField ? bodyField.split(".").map((n, i, a) => (i === 0 ? Req : (Req.fields.find((f) => f.name === a[0])!.message as DescMessage)).fields.find((f) => f.name === n)!) : undefined,
});
const build = (query: string, opts: { body?: string; rule?: string; path?: [string, string][] } = {}) =>
  toJson(
    Req,
    buildRequest(
      shape(opts.rule ?? "", opts.rule && opts.rule !== "*" ? opts.rule : undefined),
      (opts.path ?? []).map(([p, value]) => ({ fieldPath: p.split("."), value })),
      parseQuery(query),
      opts.body === undefined ? undefined : new TextEncoder().encode(opts.body),
      registry,
    ),
    { registry },
  );

describe("edge transcoding: query parameters", () => {
  it("binds repeated fields from every occurrence, in order", () => {
    assert.deepEqual(build("ids=1&ids=9007199254740993&colours=COLOUR_RED&colours=0"), {
      ids: ["1", "9007199254740993"],
      colours: ["COLOUR_RED", "COLOUR_UNSPECIFIED"],
    });
  });

  it("binds nested fields by JSON or proto names, booleans, wrappers, timestamps, bytes, uint64 and doubles", () => {
    assert.deepEqual(
      build("inner.pageSize=3&inner.tags=a&inner.tags=b&flag=true&maybe=false&since=2024-01-02T03:04:05Z&blob=aGk%3D&big=18446744073709551615&ratio=0.5&name=x"),
      {
        name: "x",
        flag: true,
        inner: { pageSize: 3, tags: ["a", "b"] },
        since: "2024-01-02T03:04:05Z",
        maybe: false,
        blob: "aGk=",
        big: "18446744073709551615",
        ratio: 0.5,
      },
    );
    assert.deepEqual(build("inner.page_size=4"), { inner: { pageSize: 4 } });
  });

  it("keeps the last value of a singular field", () => {
    assert.deepEqual(build("name=a&name=b"), { name: "b" });
  });

  it("refuses unknown names, traversal through scalars, repeated messages and bad values", () => {
    const cases: [string, RegExp][] = [
      ["nope=1", /^Could not find field "nope" in the type "edgetest\.Req"\.$/],
      ["inner.nope=1", /^Could not find field "nope" in the type "edgetest\.Inner"\.$/],
      ["name.x=1", /^Could not find field "x" in the type "edgetest\.Req"\.$/],
      ["items=1", /repeated message/],
      ["flag=yes", /query parameter "flag".*boolean/],
      ["ids=1&ids=x", /query parameter "ids"/],
      ["since=yesterday", /query parameter "since".*Timestamp/],
      ["colour=COLOUR_BLUE", /query parameter "colour".*COLOUR_BLUE/],
    ];
    for (const [q, message] of cases) {
      assert.throws(() => build(q), (e: Error) => e instanceof TranscodeError && message.test(e.message), q);
    }
  });
});

describe("edge transcoding: bodies and path bindings", () => {
  it("binds the query, then the path (the path wins over the query), and the body's other fields", () => {
    assert.deepEqual(build("name=query", { rule: "*", body: '{"flag":true}', path: [["name", "path"]] }), { name: "path", flag: true });
    assert.deepEqual(build("name=query", { rule: "*", body: '{"flag":true}' }), { name: "query", flag: true });
    assert.deepEqual(build("", { rule: "*", body: '{"name":"same","flag":true}', path: [["name", "same"]] }), { name: "same", flag: true }, "the same value twice is no conflict");
  });

  it("refuses a body that sets a bound field to another value (Envoy's reject_binding_body_field_collisions)", () => {
    const conflict = (e: Error) => e instanceof TranscodeError && /^The binding value "path" of the field name is conflicting with the value "body" in the body\.$/.test(e.message);
    assert.throws(() => build("", { rule: "*", body: '{"name":"body"}', path: [["name", "path"]] }), conflict);
    assert.throws(() => build("name=path", { rule: "*", body: '{"name":"body"}' }), conflict, "a query parameter is a binding too");
    assert.throws(() => build("", { rule: "inner", body: '{"page_size":7}', path: [["inner.pageSize", "8"]] }), /binding value "8" of the field pageSize is conflicting with the value 7/);
  });

  it("puts a body field's JSON into that field and binds nested path variables next to it", () => {
    assert.deepEqual(build("", { rule: "inner", body: '{"tags":["t"]}', path: [["inner.pageSize", "8"]] }), {
      inner: { pageSize: 8, tags: ["t"] },
    });

  });

  it("names the problem in malformed or mistyped bodies", () => {
    const cases: [string, string, RegExp][] = [
      ["*", "{", /^Invalid JSON payload received\. /],
      ["*", "\u00ff", /Invalid JSON payload received/],
      ["*", '{"nme":"x"}', /edgetest\.Req.*key "nme" is unknown/],
      ["inner", '{"pageSize":"x"}', /Inner\.page_size.*int32/],
      ["inner", "5", /edgetest\.Inner/],
    ];
    for (const [rule, body, message] of cases) {
      assert.throws(() => build("", { rule, body }), (e: Error) => e instanceof TranscodeError && message.test(e.message), body);
    }
    assert.throws(
      () => buildRequest(shape("*"), [], [], new Uint8Array([0xc3, 0x28]), registry),
      /not valid UTF-8/,
    );
  });
});

describe("edge transcoding: responses", () => {
  const res = create(Res, { inner: create(Inner, { pageSize: 2 }), count: 5n });

  it("renders canonical proto3 JSON (lowerCamelCase, int64 as string, defaults omitted)", () => {
    assert.deepEqual(renderResponse({ output: Res }, res, registry), { contentType: "application/json", body: '{"inner":{"pageSize":2},"count":"5"}' });
    assert.equal(renderResponse({ output: Res }, create(Res), registry).body, "{}");
  });

  // The contract has no response_body (Envoy's transcoder refuses it for non-HttpBody fields);
  // the transcoder still implements grpc-httpjson-transcoding's mapping.
  it("renders only the response_body field (message, scalar, or unset message as {})", () => {
    const f = (n: string) => [Res.fields.find((x) => x.name === n)!];
    assert.equal(renderResponse({ output: Res, responseBody: f("inner") }, res, registry).body, '{"pageSize":2}');
    assert.equal(renderResponse({ output: Res, responseBody: f("count") }, res, registry).body, '"5"');
    assert.equal(renderResponse({ output: Res, responseBody: f("inner") }, create(Res), registry).body, "{}");
  });

  it("sends a google.api.HttpBody as raw bytes with its content type", () => {
    const HttpBody = registry.getMessage("google.api.HttpBody")!;
    const hb = create(HttpBody, { contentType: "text/csv", data: new TextEncoder().encode("a,b\n") } as never);
    const out = renderResponse({ output: HttpBody }, hb, registry);
    assert.equal(out.contentType, "text/csv");
    assert.equal(new TextDecoder().decode(out.body as Uint8Array), "a,b\n");
    const viaField = renderResponse({ output: Res, responseBody: [Res.fields.find((x) => x.name === "body")!] }, create(Res, { body: hb } as never), registry);
    assert.equal(viaField.contentType, "text/csv");
  });
});
