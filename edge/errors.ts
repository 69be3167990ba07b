// Error responses of the REST edge, as Envoy produces them:
// - errors of the services (gRPC status) become what the transcoder's
//   convert_grpc_status writes: the HTTP status mapped from the code
//   (Envoy's Grpc::Utility::grpcToHttpStatus) and the google.rpc.Status as
//   canonical JSON, {"code":3,"message":"...","details":[{"@type":...}]},
//   empty fields omitted like Envoy's printer (always_print_primitive_fields: false);
// - the edge's own refusals (unknown route, bad request, JWT, limits) are
//   local replies: a status and a short text/plain body.
import { fromBinary, toJson, type DescMessage, type Message, type Registry } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";

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

/** An edge-local refusal: status, text/plain body (Envoy's sendLocalReply). */
export function localReply(status: number, text: string, headers: Record<string, string> = {}): Reply {
  return text
    ? { status, headers: { "content-type": "text/plain", ...headers }, body: text }
    : { status, headers, body: "" };
}

/** A service error as convert_grpc_status renders it. */
export function grpcErrorReply(err: ConnectError, registry: Registry): Reply {
  return {
    status: httpStatusFromGrpc(err.code),
    headers: { "content-type": "application/json" },
    body: JSON.stringify(statusJson(err, registry)),
  };
}
