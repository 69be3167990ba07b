#!/usr/bin/env python3
"""A Python gRPC client of the acme services (grpcio + stubs from proto/).

Registers, logs in, creates an order, gets it back, and reads error statuses
(NOT_FOUND, INVALID_ARGUMENT with google.rpc.BadRequest field violations,
UNAUTHENTICATED, DEADLINE_EXCEEDED). Every call carries a deadline. Prints one
JSON object per step on stdout; exits non-zero on the first unexpected result.

Needs grpcio and grpcio-tools 1.85.1 (PyPI; `npm run tools` installs them into
a venv, .cache/tools/python-grpc-1.85.1/venv). One grpc_tools.protoc call
writes the messages (googleapis files included) and the service stubs, from
the repository root:
    PY=.cache/tools/python-grpc-1.85.1/venv/bin/python
    mkdir -p STUBS
    $PY -m grpc_tools.protoc -I proto -I node_modules/google-proto-files \
        --python_out=STUBS --grpc_python_out=STUBS \
        acme/auth/v1/auth.proto acme/user/v1/user.proto acme/order/v1/order.proto \
        acme/edge/v1/policy.proto google/api/annotations.proto google/api/http.proto \
        google/api/httpbody.proto google/rpc/status.proto google/rpc/error_details.proto
    $PY test/interop/python/client.py --target localhost:8080 --stubs STUBS
"""
import argparse
import json
import sys
import uuid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="localhost:8080", help="host:port (plaintext gRPC, h2c)")
    p.add_argument("--stubs", required=True, help="directory with the generated *_pb2 modules")
    p.add_argument("--email", default=f"py-{uuid.uuid4().hex[:8]}@example.com")
    p.add_argument("--password", default="correct horse battery")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    p.add_argument("--product", required=True, help="id of a catalogue product on sale (the harness makes one)")
    args = p.parse_args()
    sys.path.insert(0, args.stubs)

    import grpc
    from acme.auth.v1 import auth_pb2, auth_pb2_grpc
    from acme.order.v1 import order_pb2, order_pb2_grpc
    from google.rpc import error_details_pb2, status_pb2

    def report(step, **kv):
        print(json.dumps({"step": step, **kv}), flush=True)

    def fail(msg):
        print(f"FAIL: {msg}", file=sys.stderr, flush=True)
        sys.exit(1)

    def status_of(err: grpc.RpcError):
        """The rich status (google.rpc.Status) from the grpc-status-details-bin trailer, if any."""
        for key, value in err.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                return status_pb2.Status.FromString(value)
        return None

    def field_violations(err: grpc.RpcError):
        st = status_of(err)
        out = []
        for detail in st.details if st else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                detail.Unpack(br)
                out += [{"field": v.field, "description": v.description} for v in br.field_violations]
        return out

    def expect_error(step, code, fn):
        try:
            fn()
        except grpc.RpcError as err:
            if err.code() != code:
                fail(f"{step}: want {code.name}, got {err.code().name}: {err.details()}")
            report(step, code=err.code().name, message=err.details(), fieldViolations=field_violations(err))
            return err
        fail(f"{step}: want {code.name}, the call succeeded")

    with grpc.insecure_channel(args.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=args.timeout)
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        orders = order_pb2_grpc.OrderServiceStub(channel)
        t = args.timeout

        reg = auth.Register(auth_pb2.RegisterRequest(email=args.email, password=args.password, name="Py Thon"), timeout=t)
        # The same answer whether or not the email was taken: {"status": "accepted"}; tokens come from Login.
        report("register", status=reg.status)

        login = auth.Login(auth_pb2.LoginRequest(email=args.email, password=args.password), timeout=t)
        token = login.tokens.access_token
        if login.user.email != args.email:
            fail("login returned another user")
        report("login", userId=login.user.id, email=login.user.email, tokenType=login.tokens.token_type, expiresIn=login.tokens.expires_in)
        bearer = (("authorization", f"Bearer {token}"),)

        request_id = str(uuid.uuid4())
        create = order_pb2.CreateOrderRequest(lines=[order_pb2.OrderLineInput(product_id=args.product, quantity=2)], request_id=request_id)
        created = orders.CreateOrder(create, timeout=t, metadata=bearer).order
        report(
            "create",
            id=created.id,
            userId=created.user_id,
            totalCents=created.total.amount_minor,
            status=order_pb2.OrderStatus.Name(created.status),
            createdAt=created.created_at.ToJsonString(),
        )

        again = orders.CreateOrder(create, timeout=t, metadata=bearer).order
        report("create-again", id=again.id)

        got = orders.GetOrder(order_pb2.GetOrderRequest(id=created.id), timeout=t, metadata=bearer).order
        if got != created:
            fail(f"get returned {got} instead of {created}")
        report("get", id=got.id, productId=got.lines[0].product_id, quantity=got.lines[0].quantity, totalCents=got.total.amount_minor)

        expect_error("not-found", grpc.StatusCode.NOT_FOUND,
                     lambda: orders.GetOrder(order_pb2.GetOrderRequest(id=str(uuid.uuid4())), timeout=t, metadata=bearer))
        expect_error("invalid-argument", grpc.StatusCode.INVALID_ARGUMENT,
                     lambda: orders.CreateOrder(order_pb2.CreateOrderRequest(lines=[order_pb2.OrderLineInput(product_id=args.product, quantity=0)],
                                                                             request_id=str(uuid.uuid4())), timeout=t, metadata=bearer))
        expect_error("unauthenticated", grpc.StatusCode.UNAUTHENTICATED,
                     lambda: orders.GetOrder(order_pb2.GetOrderRequest(id=created.id), timeout=t))
        # A deadline the server cannot meet (a password check takes tens of ms).
        expect_error("deadline", grpc.StatusCode.DEADLINE_EXCEEDED,
                     lambda: auth.Login(auth_pb2.LoginRequest(email=args.email, password=args.password), timeout=0.001))
    report("done")


if __name__ == "__main__":
    main()
