// Baseline: bare node:http returning a fixed JSON document. Prints its port.
import http from "node:http";

const body = JSON.stringify({ id: "7b0f0c52-3f0a-4a57-9d0e-2f7e3c1f9a10", email: "ada@example.com", name: "Ada", role: "user", active: true });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
process.on("SIGTERM", () => process.exit(0));
