// The loopback ports of the stack. `npm run stack` uses the defaults (the same
// numbers docker-compose.yml publishes or uses inside its network, so the
// README's commands work against either); tests take free ports.
import { freePort } from "./process.js";

export interface StackPorts {
  /** Envoy: REST, gRPC, gRPC-Web on one listener. */
  envoy: number;
  /** Envoy's HTTPS listener: the same over TLS (docs/tls.md). */
  envoyTls: number;
  envoyAdmin: number;
  auth: number;
  user: number;
  order: number;
  notification: number;
  catalogue: number;
  /** Each service's /metrics listener (loopback; never behind Envoy). */
  authMetrics: number;
  userMetrics: number;
  orderMetrics: number;
  notificationMetrics: number;
  catalogueMetrics: number;
  postgres: number;
  redis: number;
  /** RabbitMQ: AMQP, and the management UI and HTTP API. */
  rabbitmq: number;
  rabbitmqManagement: number;
  /** Mailpit: the SMTP sink the notification service sends to, and its web UI and HTTP API. */
  mailpitSmtp: number;
  mailpitHttp: number;
  ratelimitGrpc: number;
  ratelimitHttp: number;
  ratelimitDebug: number;
  otlpGrpc: number;
  otlpHttp: number;
  /** Jaeger's UI and HTTP query API. */
  jaegerQuery: number;
  jaegerQueryGrpc: number;
  jaegerHealth: number;
}

export const DEFAULT_PORTS: StackPorts = {
  envoy: 8080,
  envoyTls: 8443,
  envoyAdmin: 9901,
  auth: 50051,
  user: 50052,
  order: 50053,
  notification: 50054,
  catalogue: 50055,
  authMetrics: 9464,
  userMetrics: 9465,
  orderMetrics: 9466,
  notificationMetrics: 9467,
  catalogueMetrics: 9468,
  postgres: 5433,
  redis: 6380,
  rabbitmq: 5673,
  rabbitmqManagement: 15673,
  mailpitSmtp: 1025,
  mailpitHttp: 8025,
  ratelimitGrpc: 8081,
  ratelimitHttp: 8082,
  ratelimitDebug: 6070,
  otlpGrpc: 4317,
  otlpHttp: 4318,
  jaegerQuery: 16686,
  jaegerQueryGrpc: 16685,
  jaegerHealth: 13133,
};

/** Every port free right now (for tests, several stacks side by side). */
export async function freePorts(): Promise<StackPorts> {
  const out = {} as StackPorts;
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof StackPorts)[]) out[key] = await freePort();
  return out;
}
