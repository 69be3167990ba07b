// Notifications on the real topology (`npm run stack`): the auth and order
// services' outboxes relay to RabbitMQ, the notification service (its own
// process) consumes and sends over SMTP to Mailpit, all traced into Jaeger.
//  - a register through Envoy gives the welcome mail (recipient, subject, HTML
//    and text parts); an order through Envoy gives its confirmation mail;
//  - one Jaeger trace goes from the REST register call to the SMTP send;
//  - 1,000 orders while RabbitMQ is SIGKILLed and restarted mid-run, and again
//    while the order service (the relay's process) is SIGKILLed and restarted:
//    exactly 1,000 confirmation mails each time, none lost, none twice.
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { OrderService } from "../../gen/acme/order/v1/order_pb.js";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { Mailpit, type MessageSummary } from "../support/mailpit.js";
import { ancestors, render, traceById } from "./jaeger.js";
import { eventually, rest } from "./support.js";
import { makeStackProduct } from "../support/products.js";

const PASSWORD = "stack-notify-password-1";
const ORDERS = 1000;
const USERS = 4;
const isConfirmation = (m: MessageSummary) => /^Order \S+ received$/.test(m.Subject);

describe("notifications on the real stack: outbox -> RabbitMQ -> notification service -> SMTP (Mailpit)", function () {
  this.timeout(300_000);
  let stack: EdgeStack;
  let mail: Mailpit;
  let db: pg.Client;
  let productId: string;

  before(async () => {
    stack = await sharedEdgeStack();
    productId = await makeStackProduct(stack, { name: "widget", priceMinor: 1250n });
    assert.ok(stack.mailpitUrl, "the stack runs Mailpit");
    mail = new Mailpit(stack.mailpitUrl);
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
  });

  async function signUp(tag: string, headers: Record<string, string> = {}) {
    const email = `${tag}-${randomBytes(5).toString("hex")}@example.com`;
    const reg = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Ada <b>Lovelace</b>" }, headers });
    assert.equal(reg.status, 200, reg.text);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    return { email, id: login.body.user.id as string, token: login.body.tokens.accessToken as string };
  }

  it("a register through Envoy gives the welcome mail: right recipient, subject, HTML and text parts", async () => {
    const u = await signUp("welcome");
    const listed = await mail.waitFor((m) => m.To.some((t) => t.Address === u.email) && m.Subject === "Welcome to Acme", 30_000);
    const m = await mail.message(listed.ID);
    assert.deepEqual(m.To.map((t) => t.Address), [u.email]);
    assert.match(m.From?.Address ?? "", /@/);
    assert.match(m.Headers["Content-Type"]?.[0] ?? "", /^multipart\/alternative/);
    assert.match(m.HTML, /<html[\s>]/i);
    assert.match(m.HTML, /Welcome/);
    assert.ok(m.Text.trim().length > 20, m.Text);
    assert.doesNotMatch(m.Text, /<[a-z]+[\s>]/i, "the text part is not HTML");
    assert.equal(m.HTML.includes("<b>Lovelace</b>"), false, "what users typed is escaped in HTML");
  });

  it("an order created through Envoy gives its confirmation mail", async () => {
    const u = await signUp("confirm");
    const created = await rest(stack.edgeUrl, "POST", "/v1/orders", { token: u.token, body: { lines: [{ productId, quantity: 3 }], requestId: randomUUID() } });
    assert.equal(created.status, 200, created.text);
    const orderId = created.body.order.id as string;
    const listed = await mail.waitFor((m) => m.To.some((t) => t.Address === u.email) && isConfirmation(m), 30_000);
    const m = await mail.message(listed.ID);
    assert.ok(m.Text.includes("widget") && m.HTML.includes("widget"), m.Text);
    assert.ok(m.Text.includes("37.50"), `the total is in the mail: ${m.Text}`);
    const { rows } = await db.query("select status from notify.deliveries where user_id = $1 and kind = 'order_confirmation'", [u.id]);
    assert.deepEqual(rows.map((r) => r.status), ["SENT"], `one delivery, sent (order ${orderId})`);
  });

  it("one Jaeger trace goes from the REST register call through Envoy, auth, RabbitMQ and the consumer to the SMTP send", async () => {
    const traceId = randomBytes(16).toString("hex");
    const u = await signUp("trace", { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` });
    await mail.waitFor((m) => m.To.some((t) => t.Address === u.email) && m.Subject === "Welcome to Acme", 30_000);
    // Export is batched (Envoy's every 5 s): poll until the SMTP send's chain reaches Envoy's span.
    let last: Awaited<ReturnType<typeof traceById>>;
    const tr = await eventually(async () => {
      const t = (last = await traceById(stack.jaegerUrl, traceId));
      const send = t?.spans.find((s) => s.service === "notification" && s.op === "smtp send");
      return t && send && ancestors(t, send).some((s) => s.service === "envoy-edge") ? t : undefined;
    }, "the trace from Envoy's span to the SMTP send", 45_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${last ? render(last) : "(no trace)"}`);
    });
    const smtp = tr.spans.find((s) => s.service === "notification" && s.op === "smtp send")!;
    const chain = ancestors(tr, smtp);
    const has = (service: string, op: RegExp | string, kind?: string) =>
      chain.some((s) => s.service === service && (typeof op === "string" ? s.op === op : op.test(s.op)) && (!kind || s.kind === kind));
    assert.equal(smtp.kind, "client", render(tr));
    assert.ok(has("notification", / process$/, "consumer"), `the SMTP send is under the consumer span\n${render(tr)}`);
    assert.ok(has("auth", "acme.auth.v1.AuthService/Register", "server"), `which continues the Register call's trace\n${render(tr)}`);
    assert.ok(has("envoy-edge", /.*/), `which Envoy started\n${render(tr)}`);
    assert.ok(!JSON.stringify(smtp.tags).includes(u.email), "no recipient address on the span");
  });

  /** ORDERS orders from USERS users straight to the order service (Envoy's rate limits are not under test), retried with the same request id. */
  async function createOrders(during: (created: number) => Promise<void>) {
    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => signUp(`load${i}`)));
    const transport = (token: string) =>
      createGrpcTransport({ baseUrl: stack.serviceUrl("order"), interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] });
    const clients: Client<typeof OrderService>[] = users.map((u) => createClient(OrderService, transport(u.token)));
    let created = 0;
    let retried = 0;
    const ids = new Set<string>();
    const hook = during; // called after each creation, serially per worker
    let next = 0;
    const deadline = Date.now() + 180_000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < ORDERS) {
          const n = next++;
          const requestId = `load-${n}-${randomUUID()}`;
          for (;;) {
            if (Date.now() > deadline) throw new Error(`order ${n} not created in time`);
            try {
              const r = await clients[n % USERS].createOrder({ lines: [{ productId, quantity: 1 }], requestId }, { timeoutMs: 5000 });
              ids.add(r.order!.id);
              break;
            } catch {
              retried++; // the order service is down (killed): the same request id again
              await new Promise((r) => setTimeout(r, 200));
            }
          }
          created++;
          await hook(created);
        }
      }),
    );
    assert.equal(ids.size, ORDERS, "exactly the orders asked for (retries are idempotent)");
    return { users, retried };
  }

  /** Confirmation mails to these users: every one of them, by Message-ID (a resend keeps its Message-ID). */
  async function confirmations(emails: string[]): Promise<{ total: number; distinct: number; twice: number }> {
    const all = (await Promise.all(emails.map((e) => mail.messages({ query: `to:"${e}"`, limit: 1000 })))).flat().filter(isConfirmation);
    const byId = all.reduce((m, x) => m.set(x.MessageID, (m.get(x.MessageID) ?? 0) + 1), new Map<string, number>());
    return { total: all.length, distinct: byId.size, twice: [...byId.values()].filter((n) => n > 1).length };
  }

  async function everyMail(emails: string[], what: string) {
    const t0 = Date.now();
    const got = await eventually(async () => {
      const c = await confirmations(emails);
      return c.distinct >= ORDERS ? c : undefined;
    }, `${ORDERS} confirmation mails (${what})`, 150_000);
    // A late duplicate would come within the consumers' redelivery: wait a little, then count again.
    await new Promise((r) => setTimeout(r, 3000));
    const after = await confirmations(emails);
    console.log(`      ${what}: ${after.distinct} distinct confirmation mails, ${after.total - after.distinct} duplicates, all in ${((Date.now() - t0) / 1000).toFixed(1)} s after the last order`);
    assert.deepEqual(after, { total: ORDERS, distinct: ORDERS, twice: 0 }, `exactly ${ORDERS} mails, none lost, none twice (${JSON.stringify(got)})`);
  }

  it(`${ORDERS} orders while RabbitMQ is SIGKILLed and restarted mid-run: exactly ${ORDERS} confirmation mails`, async () => {
    let maxUnsent = 0;
    const { users, retried } = await createOrders(async (created) => {
      if (created === 300) await stack.stop("rabbitmq", "SIGKILL");
      if (created === 600) await stack.start("rabbitmq");
      if (created % 100 === 0) {
        const { rows } = await db.query("select count(*)::int as n from orders.outbox where sent_at is null");
        maxUnsent = Math.max(maxUnsent, rows[0].n);
      }
    });
    assert.ok(stack.running("rabbitmq"));
    assert.equal(retried, 0, "the API kept working while the broker was down");
    console.log(`      broker kill: up to ${maxUnsent} events waited in the order outbox`);
    assert.ok(maxUnsent >= 100, `events waited in the outbox while the broker was down (${maxUnsent})`);
    await everyMail(users.map((u) => u.email), "broker killed");
  });

  it(`${ORDERS} orders while the order service (the relay's process) is SIGKILLed and restarted mid-run: exactly ${ORDERS} confirmation mails`, async () => {
    const { users, retried } = await createOrders(async (created) => {
      if (created === 400) {
        await stack.stop("order", "SIGKILL");
        setTimeout(() => void stack.start("order"), 1000);
      }
    });
    assert.ok(retried > 0, "the kill was felt: some calls were retried");
    await eventually(async () => stack.running("order"), "the order service back");
    await everyMail(users.map((u) => u.email), "relay killed");
  });
});
