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
  // Postgres known down (circuit open): retrying at once would only fail again.
  if (err instanceof DependencyUnavailableError) return err.dependency === "postgres" && !err.circuitOpen && err.reason !== POOL_BUSY;
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

// ---- dependencies that cannot answer (docs/outages.md)

export type Dependency = "postgres" | "redis";

/** The reason of a Postgres call refused because every pooled connection stayed busy (overload, not an outage). */
export const POOL_BUSY = "every connection busy";

/** Seconds a client is told to wait (Retry-After) when a dependency is down, unless the error says otherwise. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * Postgres or Redis cannot answer now (refused, timed out, connection lost,
 * shutting down, circuit open). The platform's db and kv clients throw it;
 * errorInterceptor answers UNAVAILABLE (HTTP 503) with Retry-After, never
 * INTERNAL. `cause` keeps the driver's error for logs.
 */
export class DependencyUnavailableError extends Error {
  override readonly name = "DependencyUnavailableError";
  constructor(
    readonly dependency: Dependency,
    readonly reason: string,
    opts: { cause?: unknown; circuitOpen?: boolean; retryAfterSeconds?: number } = {},
  ) {
    super(`${dependency} unavailable: ${reason}`, { cause: opts.cause });
    this.circuitOpen = opts.circuitOpen ?? false;
    this.retryAfterSeconds = Math.max(1, Math.ceil(opts.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS));
  }
  /** The dependency was not asked: its circuit is open after a recent failure. */
  readonly circuitOpen: boolean;
  readonly retryAfterSeconds: number;
}

/** Socket-level failures (node error codes): the peer is not reachable or went away. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"]);

/** node-postgres's own messages for a connection that failed, timed out or went away (they carry no code). */
const PG_CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)/;

/**
 * Why a Postgres error means "the database cannot answer now" (a short,
 * non-sensitive reason), or undefined for an error of the query itself
 * (constraint, syntax, serialization...). SQLSTATE classes 08 (connection
 * exception), 53 (insufficient resources: too many connections, out of
 * memory, disk full), 57P01-57P03 (shutting down, cannot connect now),
 * 57014 (statement timeout / cancelled); socket errors; node-postgres's
 * connection and timeout errors.
 */
export function dbUnavailableReason(err: unknown): string | undefined {
  if (err instanceof DependencyUnavailableError) return err.dependency === "postgres" ? err.reason : undefined;
  const code = pgCode(err);
  if (code) {
    if (code.startsWith("08")) return `connection exception (${code})`;
    if (code.startsWith("53")) return `insufficient resources (${code})`;
    if (code === "57P01" || code === "57P02" || code === "57P03") return `server shutting down or starting (${code})`;
    if (code === "57014") return "statement timeout";
    if (NETWORK_CODES.has(code)) return code;
  }
  const message = (err as { message?: unknown })?.message;
  if (typeof message === "string" && PG_CONNECTION_MESSAGES.test(message)) return message.slice(0, 80);
  // AggregateError of a connect to several addresses (localhost: ::1 and 127.0.0.1).
  const inner = (err as { errors?: unknown })?.errors;
  if (Array.isArray(inner) && inner.length && inner.every((e) => dbUnavailableReason(e))) return dbUnavailableReason(inner[0]);
  return undefined;
}

/** Redis replies that mean "not now" rather than "wrong command". */
const REDIS_NOT_NOW = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS|OOM)\b/;

/**
 * Why a Redis (ioredis) error means "the store cannot answer now", or
 * undefined for an error of the command itself (WRONGTYPE, syntax...): every
 * error that is not a reply from the server (connection closed, timed out,
 * offline, retries exhausted), and the replies of a server that is loading,
 * busy or out of memory.
 */
export function kvUnavailableReason(err: unknown): string | undefined {
  if (err instanceof DependencyUnavailableError) return err.dependency === "redis" ? err.reason : undefined;
  const e = err as { name?: unknown; message?: unknown };
  const message = typeof e?.message === "string" ? e.message : "";
  if (e?.name === "ReplyError") return REDIS_NOT_NOW.test(message) ? message.split(" ")[0] : undefined;
  return message.slice(0, 80) || "error";
}

/** The ConnectError a client sees for a dependency that cannot answer: UNAVAILABLE with Retry-After. */
export function unavailableError(err: DependencyUnavailableError): ConnectError {
  return new ConnectError(`${err.dependency} unavailable; retry later`, Code.Unavailable, { "retry-after": String(err.retryAfterSeconds) });
}

/**
 * The one mapping of what a handler threw to what the client sees:
 * - a ConnectError passes through (UNAVAILABLE gains Retry-After when it has none);
 * - Postgres or Redis unable to answer becomes UNAVAILABLE with Retry-After
 *   (HTTP 503 through either edge), logged at warn without the request;
 * - anything else is logged (with the method, never the request) and becomes INTERNAL.
 */
export function toConnectError(err: unknown, log: Logger, rpc: string): ConnectError {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unavailable && !err.metadata.has("retry-after")) err.metadata.set("retry-after", String(DEFAULT_RETRY_AFTER_SECONDS));
    return err;
  }
  if (err instanceof DependencyUnavailableError) {
    if (!err.circuitOpen) log.warn("dependency unavailable", { rpc, dependency: err.dependency, reason: err.reason });
    return unavailableError(err);
  }
  // A driver error that escaped the platform's clients (a pool used directly).
  const reason = dbUnavailableReason(err);
  if (reason) {
    log.warn("dependency unavailable", { rpc, dependency: "postgres", reason });
    return unavailableError(new DependencyUnavailableError("postgres", reason, { cause: err }));
  }
  log.error("unhandled error", { rpc, err });
  return new ConnectError("internal error", Code.Internal);
}

/** Server interceptor applying toConnectError to every failed call. */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw toConnectError(err, log, `${req.service.typeName}/${req.method.name}`);
    }
  };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The error with a message that can be written as gRPC's grpc-message: a lone
 * UTF-16 surrogate (from a client's JSON, echoed by a decode error) makes the
 * percent-encoding (encodeURIComponent, in connect's setTrailerStatus) throw,
 * and the call would end in a reset instead of its answer. Replaced by U+FFFD.
 */
export function writableError(e: ConnectError): ConnectError {
  if (!LONE_SURROGATE.test(e.rawMessage)) return e;
  const out = new ConnectError(e.rawMessage.replace(new RegExp(LONE_SURROGATE.source, "g"), "\uFFFD"), e.code, e.metadata, undefined, e.cause);
  out.details.push(...e.details);
  return out;
}
