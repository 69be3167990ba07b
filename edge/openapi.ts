// GET /openapi.json: the OpenAPI 3.1 document of the REST routes, generated
// from the contract into gen/openapi.json by `npm run generate`.
import { readFileSync } from "node:fs";
import type { HttpHandler } from "../platform/server.js";
import { localReply } from "./errors.js";

export const OPENAPI_PATH = "/openapi.json";

export function openApiHandler(file = new URL("../gen/openapi.json", import.meta.url)): HttpHandler {
  const body = readFileSync(file);
  return (req, res) => {
    if ((req.url ?? "").split("?")[0] !== OPENAPI_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      const reply = localReply(405, `Method ${req.method} is not allowed on ${OPENAPI_PATH}; allowed: GET, HEAD.`, { allow: "GET, HEAD" });
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body);
      return true;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length, "cache-control": "public, max-age=300" });
    if (req.method === "HEAD") res.end();
    else res.end(body);
    return true;
  };
}
