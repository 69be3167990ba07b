// Command client is a Go gRPC client of the acme services: it registers, logs
// in, creates an order, gets it back and reads error statuses (NOT_FOUND,
// INVALID_ARGUMENT with google.rpc.BadRequest field violations,
// UNAUTHENTICATED, DEADLINE_EXCEEDED). Every call has a deadline. It prints
// one JSON object per step and exits 1 on the first unexpected result.
//
// It belongs to the module acme.local/interop (../go.mod: grpc, protobuf and
// genproto pinned; protoc-gen-go and protoc-gen-go-grpc as tool directives).
// Its stubs are generated, not committed: test/interop/go.test.ts runs
// `buf generate` with those two plugins and go_package_prefix
// acme.local/interop/gen into gen/ of a copy of the module, then
// `go build ./client` there. By hand: docs/clients.md, "Go".
//
//	./client -addr localhost:8080
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	authv1 "acme.local/interop/gen/acme/auth/v1"
	orderv1 "acme.local/interop/gen/acme/order/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func report(step string, kv map[string]interface{}) {
	if kv == nil {
		kv = map[string]interface{}{}
	}
	kv["step"] = step
	b, _ := json.Marshal(kv)
	fmt.Println(string(b))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func check(step string, err error) {
	if err != nil {
		fail("%s: %v", step, err)
	}
}

// expectError reports the status of err, which must carry code.
func expectError(step string, code codes.Code, err error) {
	if err == nil {
		fail("%s: want %s, the call succeeded", step, code)
	}
	st := status.Convert(err)
	if st.Code() != code {
		fail("%s: want %s, got %s: %s", step, code, st.Code(), st.Message())
	}
	violations := []map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				violations = append(violations, map[string]string{"field": v.GetField(), "description": v.GetDescription()})
			}
		}
	}
	report(step, map[string]interface{}{"code": st.Code().String(), "message": st.Message(), "fieldViolations": violations})
}

func newID() string {
	var b [16]byte
	f, err := os.Open("/dev/urandom")
	check("random", err)
	defer f.Close()
	_, err = f.Read(b[:])
	check("random", err)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func main() {
	addr := flag.String("addr", "localhost:8080", "host:port (plaintext gRPC, h2c)")
	email := flag.String("email", "go-"+newID()[:8]+"@example.com", "account to register")
	password := flag.String("password", "correct horse battery", "its password")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	product := flag.String("product", "", "id of a catalogue product on sale (the harness makes one)")
	flag.Parse()

	// Plaintext HTTP/2 (h2c). NewClient does not connect until the first call;
	// every call below carries its own deadline.
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check("dial", err)
	defer conn.Close()
	auth := authv1.NewAuthServiceClient(conn)
	orders := orderv1.NewOrderServiceClient(conn)

	// call returns a context with the per-call deadline (and the token, if any).
	call := func(token string) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		return ctx, cancel
	}

	ctx, done := call("")
	reg, err := auth.Register(ctx, &authv1.RegisterRequest{Email: *email, Password: *password, Name: "Go Pher"})
	done()
	check("register", err)
	// The same answer whether or not the email was taken: {"status": "accepted"}; tokens come from Login.
	report("register", map[string]interface{}{"status": reg.GetStatus()})

	ctx, done = call("")
	login, err := auth.Login(ctx, &authv1.LoginRequest{Email: *email, Password: *password})
	done()
	check("login", err)
	if login.GetUser().GetEmail() != *email {
		fail("login returned another user")
	}
	token := login.GetTokens().GetAccessToken()
	report("login", map[string]interface{}{"userId": login.GetUser().GetId(), "email": login.GetUser().GetEmail(), "tokenType": login.GetTokens().GetTokenType(), "expiresIn": login.GetTokens().GetExpiresIn()})

	if *product == "" {
		fail("-product is required: the id of a catalogue product on sale")
	}
	create := &orderv1.CreateOrderRequest{Lines: []*orderv1.OrderLineInput{{ProductId: *product, Quantity: 4}}, RequestId: newID()}
	ctx, done = call(token)
	created, err := orders.CreateOrder(ctx, create)
	done()
	check("create", err)
	o := created.GetOrder()
	report("create", map[string]interface{}{
		"id": o.GetId(), "userId": o.GetUserId(), "totalCents": o.GetTotal().GetAmountMinor(),
		"status": o.GetStatus().String(), "createdAt": o.GetCreatedAt().AsTime().Format(time.RFC3339Nano),
	})

	ctx, done = call(token)
	again, err := orders.CreateOrder(ctx, create)
	done()
	check("create-again", err)
	report("create-again", map[string]interface{}{"id": again.GetOrder().GetId()})

	ctx, done = call(token)
	got, err := orders.GetOrder(ctx, &orderv1.GetOrderRequest{Id: o.GetId()})
	done()
	check("get", err)
	if !proto.Equal(got.GetOrder(), o) {
		fail("get returned %v instead of %v", got.GetOrder(), o)
	}
	report("get", map[string]interface{}{"id": got.GetOrder().GetId(), "productId": got.GetOrder().GetLines()[0].GetProductId(), "totalCents": got.GetOrder().GetTotal().GetAmountMinor()})

	ctx, done = call(token)
	_, err = orders.GetOrder(ctx, &orderv1.GetOrderRequest{Id: newID()})
	done()
	expectError("not-found", codes.NotFound, err)

	ctx, done = call(token)
	_, err = orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{Lines: []*orderv1.OrderLineInput{{ProductId: *product, Quantity: 0}}, RequestId: newID()})
	done()
	expectError("invalid-argument", codes.InvalidArgument, err)

	ctx, done = call("")
	_, err = orders.GetOrder(ctx, &orderv1.GetOrderRequest{Id: o.GetId()})
	done()
	expectError("unauthenticated", codes.Unauthenticated, err)

	// A deadline the server cannot meet (a password check takes tens of ms).
	ctx, done = context.WithTimeout(context.Background(), time.Millisecond)
	_, err = auth.Login(ctx, &authv1.LoginRequest{Email: *email, Password: *password})
	done()
	expectError("deadline", codes.DeadlineExceeded, err)

	report("done", nil)
}
