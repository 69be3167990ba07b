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
  // Register answers only {"status":"accepted"} (the same for a taken email): the tokens come from Login.
  const login = await fetch(`${base}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!login.ok) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const body = (await login.json()) as { tokens: { accessToken: string } };
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

/** The id of a product in stock (the bench systems run with CATALOGUE_SEED=demo: 100,000 units each). */
export async function productInStock(base: string): Promise<string> {
  const res = await fetch(`${base}/v1/products?inStock=true&sort=PRODUCT_SORT_PRICE`);
  const body = (await res.json()) as { products?: { id: string }[] };
  const id = body.products?.[0]?.id;
  if (!id) throw new Error(`no product in stock at ${base} (CATALOGUE_SEED=demo?): ${res.status}`);
  return id;
}

/**
 * CreateOrder with a fresh requestId per call: 2 units of `productId` (reserved
 * in the catalogue, then held); without a product id, the request of trees from
 * before orders named products (bench/compare.ts's older tree).
 */
export async function orderLoad(base: string, token: string, seconds: number, inFlight: number, productId?: string): Promise<RunResult> {
  const orders = createClient(OrderService, createGrpcTransport({ baseUrl: base }));
  const headers = { authorization: `Bearer ${token}` };
  const request = () =>
    productId ? { lines: [{ productId, quantity: 2 }], requestId: randomUUID() } : { product: "widget", quantity: 2, unitPriceCents: 1999n, requestId: randomUUID() };
  const call = () => orders.createOrder(request(), { headers });
  await closedLoop(1, inFlight, call); // warm-up
  return closedLoop(seconds, inFlight, call);
}

/**
 * Calls of a method answered with a non-OK gRPC code so far, from the
 * server's own RED metrics (h2load sees HTTP 200 whatever the gRPC status).
 */
export async function rpcErrors(base: string, service: string, method: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("grpc_server_handled_total{")) continue;
    if (!line.includes(`grpc_service="${service}"`) || !line.includes(`grpc_method="${method}"`) || line.includes('grpc_code="OK"')) continue;
    n += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return n;
}

/** Logins as fast as bcrypt allows, nothing else running: logins/s. */
export async function loginLoad(base: string, user: BenchUser, seconds: number, inFlight: number): Promise<RunResult> {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: base }));
  const login = () => auth.login({ email: user.email, password: user.password });
  await closedLoop(1, inFlight, login); // warm-up
  return closedLoop(seconds, inFlight, login);
}

/** Logins as fast as bcrypt allows while `reads` measures read latency. */
export async function loginStorm(base: string, user: BenchUser, seconds: number, reads: () => Promise<RunResult>) {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: base }));
  const login = () => auth.login({ email: user.email, password: user.password });
  const [storm, during] = await Promise.all([closedLoop(seconds, 4, login), reads()]);
  return { loginsPerSec: storm.rps, loginErrors: storm.errors, reads: summarise([during]) };
}
