// What every service module provides to the process that hosts it, and what
// the host gives it. A process hosts one service (compose) or all of them
// (`npm start`); the modules do not know which.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor, Transport } from "@connectrpc/connect";
import type { KeySource } from "./auth/keys.js";
import type { TokenVerifier } from "./auth/verifier.js";
import type { TokenSource } from "./clients.js";
import type { ConsumerSpec, MessageHandler } from "./bus/bus.js";
import type { Config } from "./config.js";
import type { Database } from "./db.js";
import type { KeyValueStore } from "./kv.js";
import type { Logger } from "./logger.js";
import type { Secrets } from "./secrets.js";
import type { HttpHandler } from "./server.js";

export interface ServiceContext {
  readonly config: Config;
  readonly db: Database;
  readonly kv: KeyValueStore;
  readonly log: Logger;
  readonly secrets: Secrets;
  /** Verifies access tokens (the same checks everywhere). */
  readonly verifier: TokenVerifier;
  /** Base URL of each service (itself included); all-in-one points them at its own port. */
  readonly urls: Readonly<Record<string, string>>;
  /**
   * Transport for calls to another service, carrying this service's identity:
   * in process when that service is hosted here (handlers called directly, the
   * caller's identity passed as a context value: no token, no loopback hop, and
   * it keeps working while the port drains on shutdown), over gRPC with this
   * service's client-credentials token otherwise. Built on first use.
   */
  transportTo(name: string, interceptors?: Interceptor[], timeoutMs?: number): Transport;
}

export interface ServiceModule {
  readonly name: string;
  /** The gRPC services this module serves (public and internal). */
  readonly services: readonly DescService[];
  /** Register handlers on the router. */
  routes(router: ConnectRouter): void;
  /** Plain HTTP handlers this service answers (e.g. the auth service's JWKS). */
  readonly httpHandlers?: readonly HttpHandler[];
  /** The auth service's key store, so verifiers in the same process skip HTTP. */
  readonly keySource?: KeySource;
  /** The outbox this service writes its events to (platform/outbox.ts); the host runs its relay. */
  readonly outbox?: { readonly schema: string; readonly exchange: string };
  /** The bus consumers of this service (platform/consumer.ts); the host declares and starts them after start(). */
  readonly consumers?: readonly { readonly spec: ConsumerSpec; readonly handler: MessageHandler }[];
  /** Start background jobs. */
  start?(): void | Promise<void>;
  /** Stop background jobs and release resources (the db/kv are closed by the host). */
  stop?(): void | Promise<void>;
}

/**
 * Two-phase construction: `prepare` runs migrations and loads state (the auth
 * service exposes its key source here), then `create` builds the module once
 * the host has built the verifier and token source.
 */
export interface ServiceDefinition {
  readonly name: string;
  /**
   * Migrations and state loading. The token service returns its key source (verifiers in the
   * same process skip HTTP) and its own service-token source (it mints rather than asks itself).
   */
  prepare(deps: { db: Database; config: Config; secrets: Secrets; log: Logger; kv: KeyValueStore }): Promise<{ keySource?: KeySource; tokens?: TokenSource }>;
  create(ctx: ServiceContext): Promise<ServiceModule>;
}
