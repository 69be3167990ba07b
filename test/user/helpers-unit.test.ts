// platform/validate.ts and platform/pagination.ts as units (no servers).
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { OrderStatusSchema } from "../../gen/acme/order/v1/order_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { nextPage, pageSize, pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import { updatePaths, Validator } from "../../platform/validate.js";

/** The field names of an INVALID_ARGUMENT thrown by fn. */
function violations(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    const ce = err as ConnectError;
    assert.equal(ce.code, Code.InvalidArgument);
    return ce.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
  }
  assert.fail("expected INVALID_ARGUMENT");
}

describe("platform/validate", () => {
  it("names every bad field at once", () => {
    const fields = violations(() =>
      new Validator()
        .text("product", "", { max: 10 })
        .text("name", "x".repeat(11), { max: 10 })
        .text("note", "a\u0000b", { max: 10 })
        .int("quantity", -1, { min: 0, max: 5 })
        .bigint("cents", 11n, { min: 0n, max: 10n })
        .uuid("id", "not-a-uuid")
        .enumValue("status", 42, OrderStatusSchema)
        .oneOf("role", "root", ["user", "admin"])
        .done(),
    );
    assert.deepEqual(fields, ["product", "name", "note", "quantity", "cents", "id", "status", "role"]);
  });

  it("counts characters, not UTF-16 units, and treats whitespace-only as empty", () => {
    new Validator().text("s", "😀".repeat(10), { max: 10 }).done();
    assert.deepEqual(violations(() => new Validator().text("s", "   ", { max: 10 }).done()), ["s"]);
    assert.deepEqual(violations(() => new Validator().text("s", "\ud800", { max: 10 }).done()), ["s"]);
  });

  it("accepts valid values", () => {
    new Validator().uuid("id", randomUUID()).enumValue("s", 1, OrderStatusSchema).int("q", 5, { min: 1, max: 5 }).done();
    new Validator().enumValue("s", 0, OrderStatusSchema, { allowUnspecified: true }).uuid("u", "", { optional: true }).done();
  });

  it("update masks: explicit paths must be updatable; empty means the populated updatable fields", () => {
    const rules = { updatable: ["name"] as const, known: ["id", "name", "role"], populated: ["name"] as "name"[] };
    assert.deepEqual(updatePaths(undefined, rules), ["name"]);
    assert.deepEqual(updatePaths(create(FieldMaskSchema, { paths: ["*"] }), rules), ["name"]);
    assert.deepEqual(violations(() => updatePaths(create(FieldMaskSchema, { paths: ["role", "nope"] }), rules)), ["updateMask", "updateMask"]);
    assert.deepEqual(violations(() => updatePaths(create(FieldMaskSchema, { paths: [] }), { ...rules, populated: [] })), ["updateMask"]);
  });
});

describe("platform/pagination", () => {
  const tokens = new PageTokens(pageTokenKey(randomBytes(32), "test"));
  const cursor = { ts: "2024-05-01T10:00:00.123456Z", id: randomUUID() };

  it("round-trips a cursor for the same scope", () => {
    assert.deepEqual(tokens.decode(tokens.encode(cursor, "a"), "a"), cursor);
    assert.equal(tokens.decode("", "a"), undefined);
  });

  it("refuses tokens that were edited, forged, replayed in another scope or signed with another key", () => {
    const good = tokens.encode(cursor, "a");
    const [payload, mac] = good.split(".");
    const forged = Buffer.from(JSON.stringify([1, "2000-01-01T00:00:00.000000Z", cursor.id])).toString("base64url");
    const other = new PageTokens(pageTokenKey(randomBytes(32), "test")).encode(cursor, "a");
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    for (const bad of [`${flip(payload)}.${mac}`, `${payload}.${flip(mac)}`, `${forged}.${mac}`, other, "garbage", "a.b.c", "x".repeat(600), payload]) {
      assert.deepEqual(violations(() => tokens.decode(bad, "a")), ["pageToken"], bad);
    }
    assert.deepEqual(violations(() => tokens.decode(good, "b")), ["pageToken"]);
  });

  it("replicas sharing PAGE_TOKEN_SECRET accept each other's tokens; a short secret is refused at start", () => {
    const env = { PAGE_TOKEN_SECRET: "s".repeat(32) };
    const one = new PageTokens(pageTokenKey(pageTokenSecret(env, randomBytes(32)), "p"));
    const two = new PageTokens(pageTokenKey(pageTokenSecret(env, randomBytes(32)), "p"));
    assert.deepEqual(two.decode(one.encode(cursor, "a"), "a"), cursor);
    assert.throws(() => pageTokenSecret({ PAGE_TOKEN_SECRET: "short" }, randomBytes(32)), /PAGE_TOKEN_SECRET/);
    const fallback = randomBytes(32);
    assert.equal(pageTokenSecret({}, fallback), fallback);
  });

  it("page size: 0 -> default 20, capped at 100, negative refused", () => {
    assert.equal(pageSize(0), 20);
    assert.equal(pageSize(7), 7);
    assert.equal(pageSize(1000), 100);
    assert.deepEqual(violations(() => pageSize(-1)), ["pageSize"]);
  });

  it("nextPage returns a token only when there is more", () => {
    const enc = (c: { id: string }) => c.id;
    assert.deepEqual(nextPage([1, 2], 2, (n) => ({ ts: "", id: String(n) }), enc), { items: [1, 2], nextPageToken: "" });
    assert.deepEqual(nextPage([1, 2, 3], 2, (n) => ({ ts: "", id: String(n) }), enc), { items: [1, 2], nextPageToken: "2" });
  });
});
