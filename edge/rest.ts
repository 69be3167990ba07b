// The REST side of the edge, one request at a time, in Envoy's filter order:
//   route (404 / 405) and query parameters (400)   grpc_json_transcoder, headers
//   size (413)                                      buffer limit
//   JWT on non-public RPCs (401 / 403)              jwt_authn
//   global rate limits (429)                        ratelimit
//   body -> request message (400)                   grpc_json_transcoder, body
//   the RPC through deps.transportFor (the services' own interceptors run there)
//   response -> JSON, gRPC errors -> convert_grpc_status
import { invalidArgument } from "../platform/errors.js";
import { textViolations } from "../platform/validate.js";
import { setHttpRoute } from "../platform/telemetry/tracing.js";
import type { DescMethodUnary, Message, Registry } from "@bufbuild/protobuf";
import { ConnectError, createContextValues, type Transport } from "@connectrpc/connect";
import { bearerToken, verifiedTokenKey } from "../platform/auth/interceptor.js";
import type { Principal } from "../platform/auth/principal.js";
import { setCallPolicy, Access } from "../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER } from "../platform/request.js";
import type { Logger } from "../platform/logger.js";
import type { NodeRequest, NodeResponse } from "../platform/server.js";
import { wwwAuthenticate, type EdgeAuthn } from "./authn.js";
import { grpcErrorReply, localReply, type Reply } from "./errors.js";
import { BadGzip, bodyEncoding, readBody } from "./body.js";
import { DEFAULT_CACHE_CONTROL, FORWARDED_REQUEST_HEADERS, headerValue, isAcceptedBodyType, isCredentialEndpoint, REQUEST_ID_HEADER } from "./headers.js";
import { descriptorsFor, type RateLimiter } from "./ratelimit.js";
import type { CompiledRoutes, Route } from "./routes.js";
import { buildRequest, renderResponse, resolveQueryField, TranscodeError } from "./transcode.js";
import { BadPathError, normalisePath, parseQuery } from "./url.js";

export interface RestOptions {
  routes: CompiledRoutes;
  registry: Registry;
  authn: EdgeAuthn;
  limiter: RateLimiter;
  transportFor(serviceTypeName: string): Transport;
  maxBodyBytes: number;
  /** Nesting depth of a JSON body (400 over it; default DEFAULT_MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  /** Deadline of the backend call (Envoy's default route timeout is 15 s). */
  timeoutMs: number;
  log: Logger;
}

export interface RequestContext {
  readonly requestId: string;
  readonly clientIp: string;
}

/** Response headers of the service not passed on (protocol and hop-by-hop). */
const DROPPED_RESPONSE_HEADERS = /^(content-type|content-length|content-encoding|transfer-encoding|connection|keep-alive|te|trailer|upgrade|date|server|accept-encoding|x-request-id|grpc-.*|connect-.*)$/i;

function send(req: NodeRequest, res: NodeResponse, reply: Reply, extra: Record<string, string> = {}): void {
  const body = typeof reply.body === "string" ? Buffer.from(reply.body) : reply.body;
  const headers: Record<string, string> = { ...extra, ...reply.headers, "content-length": String(body.length) };
  res.writeHead(reply.status, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/** The REST handler: answers a request on a path the routes claim (true), else leaves it to others (false). */
export function restHandler(opts: RestOptions) {
  const { table } = opts.routes;
  return async (req: NodeRequest, res: NodeResponse, ctx: RequestContext): Promise<boolean> => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? "" : url.slice(q + 1);
    let path: string;
    try {
      path = normalisePath(rawPath);
    } catch (err) {
      if (!(err instanceof BadPathError) || !table.claims(rawPath)) return false;
      send(req, res, localReply(400, err.message));
      return true;
    }
    if (!table.claims(path)) return false;
    const method = req.method ?? "GET";

    const match = table.lookup(method, path);
    if (!match) {
      const allowed = table.allowedMethods(path);
      if (allowed.length) {
        send(req, res, localReply(405, `Method ${method} is not allowed on ${rawPath}; allowed: ${allowed.join(", ")}.`, { allow: allowed.join(", "), "cache-control": DEFAULT_CACHE_CONTROL }));
      } else {
        send(req, res, localReply(404, `Could not resolve ${rawPath} to a method.`, { "cache-control": DEFAULT_CACHE_CONTROL }));
      }
      return true;
    }
    const route = match.value;
    setHttpRoute(route.template);
    const extra: Record<string, string> = {};
    const credentials = isCredentialEndpoint(route.policy); // responses that carry credentials are never cached
    extra["cache-control"] = DEFAULT_CACHE_CONTROL; // the edge's own refusals too, as Envoy's virtual host adds it (a non-credential service's own replaces it)

    // A body must be JSON (as Envoy's header filter requires, before anything else reads it).
    if (!isAcceptedBodyType(req.headers)) {
      send(req, res, localReply(415, `content-type ${JSON.stringify(headerValue(req, "content-type") ?? "")} is not accepted: send application/json`), extra);
      return true;
    }
    const encoding = bodyEncoding(req);
    if (!encoding) {
      send(req, res, localReply(415, `content-encoding ${JSON.stringify(headerValue(req, "content-encoding"))} is not accepted: send the body as is or gzip`), extra);
      return true;
    }
    const query = parseQuery(rawQuery);
    try {
      for (const p of query) resolveQueryField(route.input, p.name);
    } catch (err) {
      send(req, res, localReply(400, (err as Error).message), extra);
      return true;
    }
    if (route.method.methodKind !== "unary") {
      send(req, res, localReply(501, `${route.policy.path} is a streaming RPC; only unary RPCs are transcoded.`), extra);
      return true;
    }
    const declared = Number(headerValue(req, "content-length") ?? "0");
    const tooLarge = () => {
      if (req.httpVersionMajor === 1) extra.connection = "close";
      send(req, res, localReply(413, "Payload Too Large"), extra);
      return true;
    };
    if (route.body && declared > opts.maxBodyBytes) return tooLarge();

    let subject: string | undefined;
    let verified: Principal | undefined;
    if (route.policy.access !== Access.PUBLIC) {
      const a = await opts.authn.authenticate(headerValue(req, "authorization"));
      if (!a.ok) {
        // jwt_authn's realm: scheme://host/path of the original request (printable ASCII, no quotes).
        const realm = `http://${headerValue(req, "host") ?? headerValue(req, ":authority") ?? ""}${(path + (q < 0 ? "" : url.slice(q))).slice(0, 256)}`.replace(
          /[^\x21-\x7e]|"/g,
          (c) => encodeURIComponent(c),
        );
        send(req, res, localReply(a.status, a.reason, { "www-authenticate": wwwAuthenticate(realm, a.missing) }), extra);
        return true;
      }
      subject = a.subject;
      verified = a.principal;
    }

    const decision = await opts.limiter.check(descriptorsFor(ctx.clientIp, subject, route.policy.rateLimit));
    Object.assign(extra, decision.headers);
    if (decision.overLimit) {
      send(req, res, localReply(429, ""), extra);
      return true;
    }

    let body: Uint8Array | undefined;
    if (route.body) {
      const read = await readBody(req, opts.maxBodyBytes, encoding).catch((err: unknown) => (err instanceof BadGzip ? err : null));
      if (read === null) return true; // the client went away mid-body
      if (read instanceof BadGzip) {
        send(req, res, localReply(400, read.message), extra);
        return true;
      }
      if (!read) return tooLarge();
      body = read;
    }
    let input: Message;
    try {
      input = buildRequest(route, match.bindings, query, body, opts.registry, { maxJsonDepth: opts.maxJsonDepth });
    } catch (err) {
      if (!(err instanceof TranscodeError)) throw err;
      send(req, res, localReply(400, err.message), extra);
      return true;
    }
    // Hostile text in any field (NUL...): the same answer as the services give (platform/validate.ts).
    const violations = textViolations(route.input, input);
    if (violations.length) {
      send(req, res, grpcErrorReply(invalidArgument(violations), opts.registry), extra);
      return true;
    }

    const header = new Headers();
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = headerValue(req, name);
      if (v !== undefined) header.set(name, v);
    }
    header.set(REQUEST_ID_HEADER, ctx.requestId);
    header.set(EXTERNAL_ADDRESS_HEADER, ctx.clientIp);

    // A service in this process takes the principal verified above instead of verifying again.
    const values = createContextValues();
    setCallPolicy(values, route.policy); // looked up once: the services' interceptors take it from here
    if (verified) values.set(verifiedTokenKey, { token: bearerToken(headerValue(req, "authorization"))!, principal: verified });

    /** The service's response headers and trailers the client gets. */
    const passOn = (headers: Headers) => headers.forEach((v, k) => {
      if (!DROPPED_RESPONSE_HEADERS.test(k) && !(credentials && k === "cache-control")) extra[k] = v;
    });
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once("close", onClose);
    try {
      const out = await opts
        .transportFor(route.service.typeName)
        .unary(route.method as DescMethodUnary, abort.signal, opts.timeoutMs, header, input as never, values);
      passOn(out.header);
      const rendered = renderResponse(route, out.message as Message, opts.registry);
      send(req, res, { status: 200, headers: { "content-type": rendered.contentType }, body: rendered.body }, extra);
    } catch (err) {
      const ce = ConnectError.from(err);
      passOn(ce.metadata);
      if (abort.signal.aborted) return true; // the client is gone
      send(req, res, grpcErrorReply(ce, opts.registry), extra);
    } finally {
      res.off("close", onClose);
    }
    return true;
  };
}
