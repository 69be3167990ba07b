// Package interop only imports what the client and its generated stubs
// import. The stubs are written at test time into gen/ of a copy of this
// module (see client/main.go), so `go mod tidy` never sees their imports: this
// file keeps the googleapis module in go.mod and go.sum, and `npm run tools`
// (scripts/tools/go-modules.ts) vets it, which compiles every dependency of
// the client into the build cache, with vet's facts, before the test runs.
// Without gen/, tidy with `GOPROXY=off go mod tidy -e`.
package interop

import (
	_ "google.golang.org/genproto/googleapis/api/annotations"
	_ "google.golang.org/genproto/googleapis/api/httpbody"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/metadata"
	_ "google.golang.org/grpc/status"
	_ "google.golang.org/protobuf/proto"
	_ "google.golang.org/protobuf/reflect/protoreflect"
	_ "google.golang.org/protobuf/runtime/protoimpl"
	_ "google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
)
