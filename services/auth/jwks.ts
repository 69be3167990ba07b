// The public keys as a JSON Web Key Set, two ways: AuthService.GetJwks
// (google.api.HttpBody, for gRPC and the transcoded REST route) and a plain
// `GET /.well-known/jwks.json` on the service port, which is what Envoy's
// jwt_authn (remote_jwks over HTTP/1.1) and remote verifiers fetch.
import { create } from "@bufbuild/protobuf";
import { HttpBodySchema, type HttpBody } from "../../gen/google/api/httpbody_pb.js";
import type { HttpHandler, NodeResponse } from "../../platform/server.js";
import type { AuthConfig } from "./config.js";
import type { SigningKeys } from "./keys.js";

export const JWKS_PATH = "/.well-known/jwks.json";
export const JWKS_CONTENT_TYPE = "application/jwk-set+json";

export class JwksPublisher {
  constructor(
    private readonly keys: SigningKeys,
    private readonly cfg: AuthConfig,
  ) {}

  json(): string {
    return JSON.stringify(this.keys.jwks());
  }

  cacheControl(): string {
    return `public, max-age=${this.cfg.jwksMaxAgeSeconds}`;
  }

  httpBody(): HttpBody {
    return create(HttpBodySchema, { contentType: JWKS_CONTENT_TYPE, data: Buffer.from(this.json(), "utf8") });
  }

  /** Plain HTTP handler (HTTP/1.1 and h2c): GET/HEAD /.well-known/jwks.json. */
  httpHandler(): HttpHandler {
    return (req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (path !== JWKS_PATH) return false;
      // gRPC/Connect calls never use this path; anything but GET/HEAD is refused here.
      const r = res as NodeResponse & { writeHead(status: number, headers: Record<string, string | number>): unknown; end(body?: string): unknown };
      if (req.method !== "GET" && req.method !== "HEAD") {
        r.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
        r.end(JSON.stringify({ code: 12, message: "method not allowed", details: [] }));
        return true;
      }
      const body = this.json();
      r.writeHead(200, {
        "content-type": JWKS_CONTENT_TYPE,
        "cache-control": this.cacheControl(),
        "content-length": Buffer.byteLength(body),
        "x-content-type-options": "nosniff",
      });
      r.end(req.method === "HEAD" ? undefined : body);
      return true;
    };
  }
}
