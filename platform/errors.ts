// One mapping from domain errors to gRPC codes. Handlers throw these (or a
// ConnectError); anything else becomes INTERNAL with a generic message, so
// stack traces and SQL text never reach a client.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema, BadRequest_FieldViolationSchema } from "../gen/google/rpc/error_details_pb.js";
import type { Logger } from "./logger.js";

export { Code, ConnectError };

export interface FieldViolation {
  /** Field path as in the request, lowerCamelCase JSON name, e.g. "unitPriceCents". */
  field: string;
  description: string;
}

/** INVALID_ARGUMENT with google.rpc.BadRequest details naming each bad field. */
export function invalidArgument(violations: FieldViolation[]): ConnectError {
  const msg = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  const detail = create(BadRequestSchema, {
    fieldViolations: violations.map((v) => create(BadRequest_FieldViolationSchema, v)),
  });
  return new ConnectError(msg, Code.InvalidArgument, undefined, [{ desc: BadRequestSchema, value: detail }]);
}

export const notFound = (what: string) => new ConnectError(`${what} not found`, Code.NotFound);
export const alreadyExists = (msg: string) => new ConnectError(msg, Code.AlreadyExists);
export const failedPrecondition = (msg: string) => new ConnectError(msg, Code.FailedPrecondition);
export const permissionDenied = (msg = "permission denied") => new ConnectError(msg, Code.PermissionDenied);
export const unauthenticated = (msg = "unauthenticated") => new ConnectError(msg, Code.Unauthenticated);
export const unavailable = (msg: string) => new ConnectError(msg, Code.Unavailable);
export const resourceExhausted = (msg: string) => new ConnectError(msg, Code.ResourceExhausted);

/** Postgres SQLSTATEs worth naming. */
export const PG_UNIQUE_VIOLATION = "23505";

export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

/** True for errors worth retrying: connection loss, serialization failure, deadlock. */
export function isTransientDbError(err: unknown): boolean {
  const code = pgCode(err);
  if (!code) return false;
  return (
    code === "40001" || // serialization_failure
    code === "40P01" || // deadlock_detected
    code.startsWith("08") || // connection exceptions
    code === "57P01" || // admin_shutdown
    code === "ECONNRESET" ||
    code === "ECONNREFUSED" ||
    code === "EPIPE"
  );
}

/**
 * Server interceptor: ConnectErrors pass through unchanged; anything else is
 * logged (with the method, never the request) and becomes INTERNAL.
 */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      log.error("unhandled error", { rpc: `${req.service.typeName}/${req.method.name}`, err });
      throw new ConnectError("internal error", Code.Internal);
    }
  };
}
