// Malformed gRPC (h2c) and Connect unary requests for every method of
// gen/api.binpb: a plausible message, then broken bytes (random, truncated,
// mutated, wrong wire types, invalid UTF-8, deep groups), bad envelopes, wrong
// content-types and bad protocol headers. Deterministic for a seed.
import { readFileSync } from "node:fs";
import { create, createFileRegistry, fromBinary, toBinary, toJson, ScalarType, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { REVOKING, type FuzzRequest, type Tokens } from "./rest-cases.js";
import { Rng } from "./random.js";

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("../../gen/api.binpb", import.meta.url))));
export const METHODS: DescMethod[] = [];
for (const t of registry) if (t.kind === "service") METHODS.push(...t.methods);

/** A plausible message: every scalar field set, nested messages one level deep. */
function sample(desc: DescMessage, rng: Rng, depth = 0): Record<string, unknown> {
  const m = create(desc) as unknown as Record<string, unknown>;
  for (const f of desc.fields) {
    if (f.fieldKind === "scalar") {
      const v = f.scalar === ScalarType.STRING ? rng.pick(["fuzz@example.com", "correct horse battery", "widget", rng.uuid()])
        : f.scalar === ScalarType.BOOL ? true
        : f.scalar === ScalarType.BYTES ? new Uint8Array([1, 2, 3])
        : [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(f.scalar) ? BigInt(1 + rng.int(100))
        : 1 + rng.int(10);
      if (f.oneof) (m[f.oneof.localName] as unknown) = { case: f.localName, value: v };
      else m[f.localName] = v;
    } else if (f.fieldKind === "enum") m[f.localName] = f.enum.values[rng.int(f.enum.values.length)].number;
    else if (f.fieldKind === "message" && depth < 1 && !f.oneof) m[f.localName] = create(f.message, sample(f.message, rng, depth + 1) as never);
  }
  return m;
}

const varint = (n: number) => {
  const out: number[] = [];
  while (n > 127) out.push((n & 127) | 128), (n = Math.floor(n / 128));
  out.push(n);
  return Buffer.from(out);
};

/** Protobuf bytes broken one way. */
function brokenProto(valid: Buffer, rng: Rng): { msg: Buffer; what: string } {
  switch (rng.int(9)) {
    case 0:
      return { msg: rng.bytes(1 + rng.int(300)), what: "random bytes" };
    case 1:
      return valid.length > 1 ? { msg: valid.subarray(0, 1 + rng.int(valid.length - 1)), what: "truncated message" } : { msg: Buffer.from([0x0a, 0x05, 0x61]), what: "truncated string" };
    case 2:
      return { msg: rng.mutate(valid), what: "mutated message" };
    case 3: // field 1 as a varint, a fixed64 or a length over the end, whatever its type
      return { msg: Buffer.from(rng.pick([[0x08, 0x96, 0x01], [0x09, 1, 2, 3, 4, 5, 6, 7, 8], [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], [0x0d, 1, 2]])), what: "field 1 with the wrong wire type" };
    case 4:
      return { msg: Buffer.concat([Buffer.from([0x0a, 4]), rng.pick([Buffer.from([0xff, 0xfe, 0x41, 0x42]), Buffer.from([0xc3, 0x28, 0xed, 0xa0])])]), what: "invalid UTF-8 in field 1" };
    case 5: {
      const n = rng.pick([100, 5000, 100_000]);
      return { msg: Buffer.from(Array.from({ length: n }, () => [0x9b, 0x06]).flat()), what: `${n} nested unknown groups (field 99)` };
    }
    case 6:
      return { msg: Buffer.concat([Buffer.from([0x0a]), varint(rng.pick([2 ** 31, 2 ** 28])), Buffer.from("x")]), what: "length prefix past the end" };
    case 7:
      return { msg: Buffer.from([0x00, 0x00, 0x07, 0x0f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), what: "field 0, wire types 7 and 4, overlong varint" };
    default:
      return { msg: Buffer.concat([valid, Buffer.from([0x0a, 0x01, 0x00, 0xfa, 0x3e, 0x02, 0x00, 0x00])]), what: "NUL string and unknown field appended" };
  }
}

const envelope = (msg: Buffer, flags = 0, len = msg.length) => {
  const h = Buffer.alloc(5);
  h[0] = flags;
  h.writeUInt32BE(len >>> 0, 1);
  return Buffer.concat([h, msg]);
};

const path = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;

export function grpcCases(count: number, rng: Rng, tokens: Tokens): FuzzRequest[] {
  const out: FuzzRequest[] = [];
  for (let i = 0; i < count; i++) {
    const m = METHODS[i % METHODS.length];
    const valid = Buffer.from(toBinary(m.input, create(m.input, sample(m.input, rng) as never)));
    const headers: Record<string, string> = { "content-type": "application/grpc", te: "trailers" };
    const token = REVOKING.test(m.name) ? tokens.victim : tokens.user;
    if (token && rng.chance(0.7)) headers.authorization = `Bearer ${token}`;
    let p = path(m);
    let body: Buffer;
    let what: string;
    switch (rng.int(10)) {
      case 0: {
        const len = rng.pick([0, 1, 4, valid.length + 10, 0xffffffff, 5 * 1024 * 1024]);
        body = envelope(valid, 0, len);
        what = `envelope length ${len} for ${valid.length} bytes`;
        break;
      }
      case 1:
        body = rng.pick([Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0, 0]), envelope(valid, rng.pick([2, 0x80, 0xff]))]);
        what = `bad envelope ${body.subarray(0, 5).toString("hex")}`;
        break;
      case 2:
        body = envelope(rng.chance(0.5) ? valid : rng.bytes(20), 1);
        if (rng.chance(0.5)) headers["grpc-encoding"] = rng.pick(["gzip", "deflate", "br", "snappy", "identity"]);
        what = `compressed flag, grpc-encoding ${headers["grpc-encoding"] ?? "(none)"}, not compressed`;
        break;
      case 3:
        body = Buffer.concat([envelope(valid), envelope(valid)]);
        what = "two messages for a unary method";
        break;
      case 4:
        headers["content-type"] = rng.pick(["application/grpc+json", "application/grpc+xml", "application/json", "text/plain", "application/grpc-web", "application/grpc;foo", ""]);
        body = envelope(valid);
        what = `content-type "${headers["content-type"]}"`;
        break;
      case 5: {
        const k = rng.pick(["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "x-meta-bin", "authorization", "x-big"]);
        headers[k] = { "grpc-timeout": rng.pick(["xx", "-1S", "999999999H", "1.5S", ""]), "grpc-encoding": rng.pick(["lz4", "x"]), "grpc-accept-encoding": "*,,", "x-meta-bin": "!!!not base64!!!", authorization: rng.pick(["Bearer", "Bearer a.b.c", "Bearer " + "A".repeat(9000)]), "x-big": "b".repeat(rng.pick([9000, 20_000])) }[k]!;
        body = envelope(valid);
        what = `header ${k}: ${headers[k].slice(0, 20)}`;
        break;
      }
      case 6:
        p = rng.pick([`${p}x`, `/${m.parent.typeName}/`, `/acme.nope.v1.Nope/${m.name}`, `${p}/extra`, p.toLowerCase(), `/${m.parent.typeName}.${m.name}`]);
        body = envelope(valid);
        what = `unknown method ${p}`;
        break;
      default: {
        const b = brokenProto(valid, rng);
        body = envelope(b.msg);
        what = b.what;
      }
    }
    out.push({ proto: "grpc", method: "POST", path: p, headers, body, what, mayReset: what.startsWith("header x-big") });
  }
  return out;
}

/** Connect unary: JSON or binary. `brokenJson` is the REST generator's body breaker. */
export function connectCases(count: number, rng: Rng, tokens: Tokens, brokenJson: (base: Record<string, unknown>, rng: Rng) => { body: Buffer; what: string }): FuzzRequest[] {
  const out: FuzzRequest[] = [];
  for (let i = 0; i < count; i++) {
    const m = METHODS[i % METHODS.length];
    const msg = create(m.input, sample(m.input, rng) as never);
    const json = rng.chance(0.5);
    const headers: Record<string, string> = { "content-type": json ? "application/json" : "application/proto", "connect-protocol-version": "1" };
    const token = REVOKING.test(m.name) ? tokens.victim : tokens.user;
    if (token && rng.chance(0.7)) headers.authorization = `Bearer ${token}`;
    let method = "POST";
    let body: Buffer;
    let what: string;
    if (json) {
      const b = brokenJson(toJson(m.input, msg) as Record<string, unknown>, rng);
      [body, what] = [b.body, `json: ${b.what}`];
    } else {
      const b = brokenProto(Buffer.from(toBinary(m.input, msg)), rng);
      [body, what] = [b.msg, `proto: ${b.what}`];
    }
    switch (rng.int(6)) {
      case 0:
        headers["connect-protocol-version"] = rng.pick(["2", "0", "x", "", "1, 1"]);
        what += `; connect-protocol-version "${headers["connect-protocol-version"]}"`;
        break;
      case 1:
        headers["connect-timeout-ms"] = rng.pick(["abc", "-1", "1.5", "99999999999", "", "0x10", "1e3", "12345678901"]);
        what += `; connect-timeout-ms "${headers["connect-timeout-ms"]}"`;
        break;
      case 2:
        headers["content-encoding"] = rng.pick(["gzip", "br", "zstd", "x"]);
        what += `; content-encoding ${headers["content-encoding"]} on a plain body`;
        break;
      case 3:
        headers["content-type"] = rng.pick(["application/connect+json", "application/connect+proto", "application/json; charset=latin1", "application/proto; x", "application/grpc+proto"]);
        what += `; content-type "${headers["content-type"]}"`;
        break;
      case 4:
        if (rng.chance(0.3)) {
          method = "GET";
          what += "; GET";
        }
        break;
      default:
    }
    out.push({ proto: "connect", method, path: path(m), headers, body: method === "GET" ? undefined : body, what });
  }
  return out;
}
