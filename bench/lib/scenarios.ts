// Product scenarios driven by a Node client where a native generator cannot
// express them (unique idempotency keys, logins with bcrypt).
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { OrderService } from "../../gen/acme/order/v1/order_pb.js";
import { percentile, summarise, type RunResult } from "./stats.js";

export interface BenchUser {
  email: string;
  password: string;
  accessToken: string;
}

export async function registerUser(base: string): Promise<BenchUser> {
  const email = `bench-${randomUUID()}@example.com`;
  const password = "correct horse battery staple";
  const res = await fetch(`${base}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password, name: "Bench" }),
  });
  if (!res.ok) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { tokens: { accessToken: string } };
  return { email, password, accessToken: body.tokens.accessToken };
}

async function closedLoop(seconds: number, inFlight: number, call: () => Promise<unknown>): Promise<RunResult> {
  const lat: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const s = performance.now();
        try {
          await call();
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { rps: lat.length / ((performance.now() - t0) / 1000), p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), errors };
}

/** CreateOrder with a fresh requestId per call. */
export async function orderLoad(base: string, token: string, seconds: number, inFlight: number): Promise<RunResult> {
  const orders = createClient(OrderService, createGrpcTransport({ baseUrl: base }));
  const headers = { authorization: `Bearer ${token}` };
  const call = () => orders.createOrder({ product: "widget", quantity: 2, unitPriceCents: 1999n, requestId: randomUUID() }, { headers });
  await closedLoop(1, inFlight, call); // warm-up
  return closedLoop(seconds, inFlight, call);
}

/** Logins as fast as bcrypt allows while `reads` measures read latency. */
export async function loginStorm(base: string, user: BenchUser, seconds: number, reads: () => Promise<RunResult>) {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: base }));
  const login = () => auth.login({ email: user.email, password: user.password });
  const [storm, during] = await Promise.all([closedLoop(seconds, 4, login), reads()]);
  return { loginsPerSec: storm.rps, loginErrors: storm.errors, reads: summarise([during]) };
}
