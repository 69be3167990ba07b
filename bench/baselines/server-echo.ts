// Our one-port server (platform/server.ts: h1/h2c sniffing, the unary gRPC
// path of platform/grpc.ts) with no interceptors, answering
// grpc.health.v1.Health/Check. Prints its port.
import { HealthState, registerHealth } from "../../platform/health.js";
import { silentLogger } from "../../platform/logger.js";
import { startServer } from "../../platform/server.js";

const health = new HealthState();
const s = await startServer({ port: 0, host: "127.0.0.1", routes: (r) => registerHealth(r, health), log: silentLogger });
console.log(s.port);
process.on("SIGTERM", () => process.exit(0));
