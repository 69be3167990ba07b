// The REST side of the edge, one request at a time, in Envoy's filter order:
//   route (404 / 405) and query parameters (400)   grpc_json_transcoder, headers
//   size (413)                                      buffer limit
//   JWT on non-public RPCs (401 / 403)              jwt_authn
//   global rate limits (429)                        ratelimit
//   body -> request message (400)                   grpc_json_transcoder, body
//   the RPC through deps.transportFor (the services' own interceptors run there)
//   response -> JSON, gRPC errors -> convert_grpc_status
import zlib from "node:zlib";
import { invalidArgument } from "../platform/errors.js";
import { textViolations } from "../platform/validate.js";
import { setHttpRoute } from "../platform/telemetry/tracing.js";
import type { DescMethodUnary, Message, Registry } from "@bufbuild/protobuf";
import { ConnectError, createContextValues, type Transport } from "@connectrpc/connect";
import { bearerToken, verifiedTokenKey } from "../platform/auth/interceptor.js";
import type { Principal } from "../platform/auth/principal.js";
import { Access } from "../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER } from "../platform/request.js";
import type { Logger } from "../platform/logger.js";
import type { NodeRequest, NodeResponse } from "../platform/server.js";
import { wwwAuthenticate, type EdgeAuthn } from "./authn.js";
import { grpcErrorReply, localReply, type Reply } from "./errors.js";
import { DEFAULT_CACHE_CONTROL, FORWARDED_REQUEST_HEADERS, isAcceptedBodyType, isCredentialEndpoint, REQUEST_ID_HEADER } from "./headers.js";
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

function headerValue(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** Content codings a REST body may have: none, or gzip (inflated with a bound, below). */
export function bodyEncoding(req: NodeRequest): "identity" | "gzip" | undefined {
  const raw = headerValue(req, "content-encoding");
  const codings = (raw ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  if (codings.length === 0) return "identity";
  if (codings.length === 1 && (codings[0] === "gzip" || codings[0] === "x-gzip")) return "gzip";
  return undefined;
}

/**
 * The request body, or undefined when it exceeds max bytes. A gzip body is
 * inflated as it arrives and both its compressed and its inflated size are
 * bounded by max: a decompression bomb stops at max bytes of output.
 * Rejects with BadGzip when the body is not valid gzip.
 */
function readBody(req: NodeRequest, max: number, encoding: "identity" | "gzip" = "identity"): Promise<Uint8Array | undefined> {
  if (encoding === "gzip") return readGzipBody(req, max);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, value?: Uint8Array) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        finish(undefined, undefined);
      } else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks));
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new Error("client closed the request"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

export class BadGzip extends Error {}

function readGzipBody(req: NodeRequest, max: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    // Small output chunks: the bound is checked every 16 KiB of inflated bytes.
    const gunzip = zlib.createGunzip({ chunkSize: 16 * 1024 });
    const chunks: Buffer[] = [];
    let read = 0;
    let inflated = 0;
    let done = false;
    const finish = (err: Error | undefined, value?: Uint8Array) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      gunzip.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > max) {
        req.pause();
        return finish(undefined, undefined);
      }
      // Backpressure: the client's bytes wait while the inflated ones are taken.
      if (!gunzip.write(chunk)) {
        req.pause();
        gunzip.once("drain", () => !done && req.resume());
      }
    };
    gunzip.on("data", (out: Buffer) => {
      inflated += out.length;
      if (inflated > max) {
        req.pause();
        finish(undefined, undefined);
      } else chunks.push(out);
    });
    gunzip.on("end", () => finish(undefined, Buffer.concat(chunks)));
    gunzip.on("error", (err) => finish(new BadGzip(`The body is not valid gzip: ${err.message}`)));
    const onEnd = () => gunzip.end();
    const onError = (err: Error) => finish(err);
    const onClose = () => {
      if (!req.complete) finish(new Error("client closed the request"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Responses that carry credentials must never be cached. */
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
    const credentials = isCredentialEndpoint(route.policy);
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
    if (verified) values.set(verifiedTokenKey, { token: bearerToken(headerValue(req, "authorization"))!, principal: verified });

    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once("close", onClose);
    try {
      const out = await opts
        .transportFor(route.service.typeName)
        .unary(route.method as DescMethodUnary, abort.signal, opts.timeoutMs, header, input as never, values);
      out.header.forEach((v, k) => {
        if (!DROPPED_RESPONSE_HEADERS.test(k) && !(credentials && k === "cache-control")) extra[k] = v;
      });
      const rendered = renderResponse(route, out.message as Message, opts.registry);
      send(req, res, { status: 200, headers: { "content-type": rendered.contentType }, body: rendered.body }, extra);
    } catch (err) {
      const ce = ConnectError.from(err);
      ce.metadata.forEach((v, k) => {
        if (!DROPPED_RESPONSE_HEADERS.test(k) && !(credentials && k === "cache-control")) extra[k] = v;
      });
      if (abort.signal.aborted) return true; // the client is gone
      send(req, res, grpcErrorReply(ce, opts.registry), extra);
    } finally {
      res.off("close", onClose);
    }
    return true;
  };
}
