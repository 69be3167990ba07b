// Baseline: bare connect-node (connectNodeAdapter on node:http2, no
// interceptors, none of platform/server.ts) answering grpc.health.v1.Health/Check.
// Prints its port. This is what serving gRPC with connect-node costs here.
import http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { HealthState, registerHealth } from "../../platform/health.js";

const health = new HealthState();
const server = http2.createServer({}, connectNodeAdapter({ routes: (r) => registerHealth(r, health) }));
server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
process.on("SIGTERM", () => process.exit(0));
