// Baseline: a bare @grpc/grpc-js server answering grpc.health.v1.Health/Check
// with a fixed SERVING reply (no protobuf work, no I/O): the ceiling of gRPC
// on Node here. Prints its port on stdout.
import * as grpc from "@grpc/grpc-js";

const SERVING = Buffer.from([0x08, 0x01]);
const identity = (b: Buffer) => b;
const server = new grpc.Server();
server.addService(
  {
    check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { check: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, SERVING) },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(port);
});
process.on("SIGTERM", () => process.exit(0));
