// gRPC status -> HTTP as Envoy's transcoder (convert_grpc_status) renders it.
import { strict as assert } from "node:assert";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { registry } from "../../app/contract.js";
import { grpcErrorReply, httpStatusFromGrpc, LOCAL_REPLIES, localReply, localReplyKind, statusJson } from "../../edge/errors.js";

describe("edge errors", () => {
  it("maps every gRPC code to Envoy's HTTP status (Grpc::Utility::grpcToHttpStatus)", () => {
    const expected: [Code, number][] = [
      [Code.Canceled, 499],
      [Code.Unknown, 500],
      [Code.InvalidArgument, 400],
      [Code.DeadlineExceeded, 504],
      [Code.NotFound, 404],
      [Code.AlreadyExists, 409],
      [Code.PermissionDenied, 403],
      [Code.ResourceExhausted, 429],
      [Code.FailedPrecondition, 400],
      [Code.Aborted, 409],
      [Code.OutOfRange, 400],
      [Code.Unimplemented, 501],
      [Code.Internal, 500],
      [Code.Unavailable, 503],
      [Code.DataLoss, 500],
      [Code.Unauthenticated, 401],
    ];
    for (const [code, status] of expected) assert.equal(httpStatusFromGrpc(code), status, Code[code]);
    assert.equal(httpStatusFromGrpc(0), 200);
    assert.equal(httpStatusFromGrpc(99), 500);
  });

  it("renders google.rpc.Status JSON with Any details, from local or wire details, omitting empty fields", () => {
    const local = new ConnectError("bad", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field: "a", description: "b" }] }) },
    ]);
    // As a client decodes them from grpc-status-details-bin: type name and bytes.
    const wire = new ConnectError("slow down", Code.Unavailable);
    wire.details.push(
      { type: "google.rpc.RetryInfo", value: toBinary(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: { seconds: 3n } })) },
      { type: "acme.unknown.v1.Thing", value: new Uint8Array([8, 1]) },
    );
    assert.deepEqual(statusJson(local, registry), {
      code: 3,
      message: "bad",
      details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "a", description: "b" }] }],
    });
    assert.deepEqual(statusJson(wire, registry), {
      code: 14,
      message: "slow down",
      details: [
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "3s" },
        { "@type": "type.googleapis.com/acme.unknown.v1.Thing", value: "CAE=" },
      ],
    });
    assert.deepEqual(statusJson(new ConnectError("", Code.NotFound), registry), { code: 5 });
    const reply = grpcErrorReply(new ConnectError("gone", Code.NotFound), registry);
    assert.deepEqual(reply, { status: 404, headers: { "content-type": "application/json" }, body: '{"code":5,"message":"gone"}' });
  });

  describe("local replies (the edge's own refusals, Envoy's local_reply_config)", () => {
    // Every status either edge answers by itself: [status, google.rpc.Code, the table's message, does it replace the edge's text].
    const expected: [number, Code, string, boolean][] = [
      [400, Code.InvalidArgument, "bad request", false],
      [401, Code.Unauthenticated, "authentication required", false],
      [403, Code.PermissionDenied, "permission denied", false],
      [404, Code.NotFound, "no route matches this path", true],
      [405, Code.Unimplemented, "method not allowed", false],
      [408, Code.DeadlineExceeded, "request timed out", false],
      [413, Code.ResourceExhausted, "request body too large", true],
      [415, Code.InvalidArgument, "unsupported content-type: send application/json", false],
      [429, Code.ResourceExhausted, "rate limit exceeded", true],
      [431, Code.ResourceExhausted, "request headers too large", true],
      [500, Code.Internal, "internal error", false],
      [501, Code.Unimplemented, "not implemented", false],
      [502, Code.Unavailable, "upstream unavailable", false],
      [503, Code.Unavailable, "service unavailable", false],
      [504, Code.DeadlineExceeded, "upstream timed out", false],
    ];
    const parsed = (body: string | Uint8Array) => {
      assert.equal(typeof body, "string");
      return JSON.parse(body as string) as unknown;
    };

    it("has exactly these statuses in LOCAL_REPLIES, each with its google.rpc.Code", () => {
      assert.deepEqual(
        Object.keys(LOCAL_REPLIES).map(Number),
        expected.map(([status]) => status),
      );
      for (const [status, code, message, replaceText] of expected) {
        assert.deepEqual(LOCAL_REPLIES[status], replaceText ? { code, message, replaceText } : { code, message }, String(status));
        assert.deepEqual(localReplyKind(status), LOCAL_REPLIES[status], String(status));
      }
    });

    it("answers every status of the table as application/json {code, message} with that status", () => {
      for (const [status, code, message, replaceText] of expected) {
        const text = `the edge's reason for ${status}`;
        const reply = localReply(status, text);
        assert.equal(reply.status, status);
        assert.deepEqual(reply.headers, { "content-type": "application/json" }, String(status));
        // Exactly code then message, nothing else (no empty details): one shape for both edges.
        assert.equal(reply.body, JSON.stringify({ code, message: replaceText ? message : text }), String(status));
        // Without a text of its own, the table's message.
        assert.deepEqual(parsed(localReply(status, "").body), { code, message }, `${status} without text`);
      }
    });

    it("keeps the edge's text where it says something, and uses the table's message where Envoy's says nothing", () => {
      assert.equal(localReply(401, "Jwt is missing").body, '{"code":16,"message":"Jwt is missing"}');
      assert.equal(localReply(403, "Audiences in Jwt are not allowed").body, '{"code":7,"message":"Audiences in Jwt are not allowed"}');
      assert.deepEqual(parsed(localReply(400, 'Could not find field "colour" in the type "acme.order.v1.ListOrdersRequest".').body), {
        code: 3,
        message: 'Could not find field "colour" in the type "acme.order.v1.ListOrdersRequest".',
      });
      assert.equal(localReply(404, "Could not resolve /v1/nope to a method.").body, '{"code":5,"message":"no route matches this path"}');
      assert.equal(localReply(413, "Payload Too Large").body, '{"code":8,"message":"request body too large"}');
      assert.equal(localReply(429, "").body, '{"code":8,"message":"rate limit exceeded"}');
      assert.equal(localReply(431, "Request Header Fields Too Large").body, '{"code":8,"message":"request headers too large"}');
    });

    it("adds the caller's headers next to the JSON content type", () => {
      const reply = localReply(405, "Method PUT is not allowed on /v1/users/me; allowed: DELETE, GET, PATCH.", { allow: "DELETE, GET, PATCH" });
      assert.deepEqual(reply, {
        status: 405,
        headers: { "content-type": "application/json", allow: "DELETE, GET, PATCH" },
        body: '{"code":12,"message":"Method PUT is not allowed on /v1/users/me; allowed: DELETE, GET, PATCH."}',
      });
      const limited = localReply(429, "", { "retry-after": "1", "x-envoy-ratelimited": "true" });
      assert.deepEqual(limited.headers, { "content-type": "application/json", "retry-after": "1", "x-envoy-ratelimited": "true" });
    });

    it("classifies statuses outside the table: 5xx as INTERNAL, others as UNKNOWN", () => {
      assert.deepEqual(localReplyKind(507), { code: Code.Internal, message: "internal error" });
      assert.deepEqual(localReplyKind(418), { code: Code.Unknown, message: "request refused" });
      assert.deepEqual(localReply(599, "").body, '{"code":13,"message":"internal error"}');
      assert.deepEqual(localReply(418, "I'm a teapot"), {
        status: 418,
        headers: { "content-type": "application/json" },
        body: '{"code":2,"message":"I\'m a teapot"}',
      });
    });
  });
});
