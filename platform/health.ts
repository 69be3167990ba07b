// grpc.health.v1.Health: Check and Watch, per service name and overall ("").
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/health/v1/health_pb.js";

export { Status as ServingStatus };

/**
 * The serving status of each service (and overall, ""), as set by the
 * process, and the dependencies (Postgres, Redis) found down: while one is
 * down every service reads NOT_SERVING, and SERVING again once it is back
 * (platform/telemetry/health.ts watches them), without a restart.
 */
export class HealthState {
  private readonly statuses = new Map<string, Status>([["", Status.SERVING]]);
  private readonly down = new Map<string, string>();
  private readonly watchers = new Set<() => void>();

  set(service: string, status: Status): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    this.notify();
  }

  /** Record a dependency as up, or down with a short reason. */
  setDependency(name: string, up: boolean, reason = "down"): void {
    if (up ? !this.down.has(name) : this.down.get(name) === reason) return;
    const wasDegraded = this.down.size > 0;
    if (up) this.down.delete(name);
    else this.down.set(name, reason);
    if (wasDegraded !== this.down.size > 0) this.notify();
  }

  /** The dependencies down now, with their reasons. */
  degraded(): Record<string, string> {
    return Object.fromEntries(this.down);
  }

  /** Mark every service (and overall) NOT_SERVING, e.g. when shutting down. */
  shutdown(): void {
    for (const name of this.statuses.keys()) this.set(name, Status.NOT_SERVING);
  }

  entries(): [string, Status][] {
    return [...this.statuses.keys()].map((name) => [name, this.get(name)!]);
  }

  /** The status served: as set, but NOT_SERVING while a dependency is down. */
  get(service: string): Status | undefined {
    const status = this.statuses.get(service);
    return status === Status.SERVING && this.down.size > 0 ? Status.NOT_SERVING : status;
  }

  /** The status as set by the process, whatever the dependencies. */
  base(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  private notify(): void {
    this.watchers.forEach((w) => w());
  }

  /** Resolves on the next change (or when the signal aborts). */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.watchers.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.watchers.add(done);
      signal.addEventListener("abort", done);
    });
  }
}

export function registerHealth(router: ConnectRouter, state: HealthState): void {
  router.service(Health, {
    check(req) {
      const status = state.get(req.service);
      if (status === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status };
    },
    async *watch(req, ctx) {
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const status = state.get(req.service) ?? Status.SERVICE_UNKNOWN;
        if (status !== last) {
          last = status;
          yield { status };
        }
        await state.changed(ctx.signal);
      }
    },
    list() {
      return { statuses: Object.fromEntries(state.entries().map(([name, status]) => [name, { status }])) };
    },
  });
}
