// Error responses of the REST edge, as Envoy produces them:
// - errors of the services (gRPC status) become what the transcoder's
//   convert_grpc_status writes: the HTTP status mapped from the code
//   (Envoy's Grpc::Utility::grpcToHttpStatus) and the google.rpc.Status as
//   canonical JSON, {"code":3,"message":"...","details":[{"@type":...}]},
//   empty fields omitted like Envoy's printer (always_print_primitive_fields: false);
// - the edge's own refusals (unknown route, bad request, JWT, limits) are
//   local replies in the same JSON shape, {"code":16,"message":"Jwt is missing"}:
//   the gRPC code of LOCAL_REPLIES[status] and the edge's text (or the table's
//   message where the edge has none). Envoy's local_reply_config is generated
//   from the same table (scripts/envoy-config/connection-manager.ts), so a client
//   parses one error shape whichever edge and whichever layer refused it.
import { fromBinary, toJson, type DescMessage, type Message, type Registry } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import { DEFAULT_RETRY_AFTER_SECONDS } from "../platform/errors.js";

const HTTP_STATUS: Record<number, number> = {
  [0]: 200,
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** HTTP status for a gRPC status code (unknown codes: 500). */
export function httpStatusFromGrpc(code: number): number {
  return HTTP_STATUS[code] ?? 500;
}

type Json = Record<string, unknown>;

/** google.protobuf.Any as JSON: "@type" first, then the message's fields (well-known types: "value"). */
export function anyJson(desc: DescMessage, message: Message, registry: Registry): Json {
  const json = toJson(desc, message, { registry }) as unknown;
  const typeUrl = `type.googleapis.com/${desc.typeName}`;
  const isObject = typeof json === "object" && json !== null && !Array.isArray(json) && !desc.typeName.startsWith("google.protobuf.");
  return isObject ? { "@type": typeUrl, ...(json as Json) } : { "@type": typeUrl, value: json };
}

/** The google.rpc.Status JSON of a ConnectError (details resolved through the registry). */
export function statusJson(err: ConnectError, registry: Registry): Json {
  const out: Json = {};
  if ((err.code as number) !== 0) out.code = err.code;
  if (err.rawMessage) out.message = err.rawMessage;
  const details: Json[] = [];
  for (const d of err.details) {
    if ("desc" in d) {
      details.push(anyJson(d.desc, d.value as Message, registry));
      continue;
    }
    const desc = registry.getMessage(d.type);
    if (desc) {
      try {
        details.push(anyJson(desc, fromBinary(desc, d.value), registry));
        continue;
      } catch {
        // fall through: undecodable detail
      }
    }
    details.push({ "@type": `type.googleapis.com/${d.type}`, value: Buffer.from(d.value).toString("base64") });
  }
  if (details.length) out.details = details;
  return out;
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export interface LocalReplyKind {
  /** The google.rpc.Code in the body. */
  code: Code;
  /** The message when the refusing layer gives none. */
  message: string;
  /** Envoy's own text for this status is replaced by `message` (it is empty or says nothing useful). */
  replaceText?: boolean;
}

/** Every HTTP status an edge answers by itself, with the code and message of its JSON body. */
export const LOCAL_REPLIES: Readonly<Record<number, LocalReplyKind>> = {
  400: { code: Code.InvalidArgument, message: "bad request" },
  401: { code: Code.Unauthenticated, message: "authentication required" },
  403: { code: Code.PermissionDenied, message: "permission denied" },
  404: { code: Code.NotFound, message: "no route matches this path", replaceText: true },
  405: { code: Code.Unimplemented, message: "method not allowed" },
  408: { code: Code.DeadlineExceeded, message: "request timed out" },
  413: { code: Code.ResourceExhausted, message: "request body too large", replaceText: true },
  415: { code: Code.InvalidArgument, message: "unsupported content-type: send application/json" },
  429: { code: Code.ResourceExhausted, message: "rate limit exceeded", replaceText: true },
  431: { code: Code.ResourceExhausted, message: "request headers too large", replaceText: true },
  500: { code: Code.Internal, message: "internal error" },
  501: { code: Code.Unimplemented, message: "not implemented" },
  502: { code: Code.Unavailable, message: "upstream unavailable" },
  503: { code: Code.Unavailable, message: "service unavailable" },
  504: { code: Code.DeadlineExceeded, message: "upstream timed out" },
};

/** The code and message of a local reply with this status (unlisted: by class). */
export function localReplyKind(status: number): LocalReplyKind {
  return LOCAL_REPLIES[status] ?? (status >= 500 ? LOCAL_REPLIES[500] : { code: Code.Unknown, message: "request refused" });
}

/** An edge-local refusal (Envoy's sendLocalReply through local_reply_config): status and the JSON error body. */
export function localReply(status: number, text: string, headers: Record<string, string> = {}): Reply {
  const kind = localReplyKind(status);
  const message = kind.replaceText || !text ? kind.message : text;
  return { status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ code: kind.code, message }) };
}

/** A service error as convert_grpc_status renders it. */
export function grpcErrorReply(err: ConnectError, registry: Registry): Reply {
  const status = httpStatusFromGrpc(err.code);
  // Every 503 says when to retry: the service's retry-after, else the default (as Envoy's Lua filter, docs/outages.md).
  const retry: Record<string, string> = status === 503 ? { "retry-after": err.metadata.get("retry-after") ?? String(DEFAULT_RETRY_AFTER_SECONDS) } : {};
  return {
    status,
    headers: { "content-type": "application/json", ...retry },
    body: JSON.stringify(statusJson(err, registry)),
  };
}
