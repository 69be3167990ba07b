// gRPC status -> HTTP as Envoy's transcoder (convert_grpc_status) renders it.
import { strict as assert } from "node:assert";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { registry } from "../../platform/registry.js";
import { grpcErrorReply, httpStatusFromGrpc, statusJson } from "../../edge/errors.js";

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
});
