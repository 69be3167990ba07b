// The notification service's pure parts: templates, SMTP error classes,
// settings, and what an event means.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AccountDeletedSchema, EnvelopeSchema, LoginFromNewDeviceSchema, OrderCancelledSchema, SessionRevokedSchema, UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { PoisonMessage } from "../../platform/bus/bus.js";
import { ConfigError } from "../../platform/config.js";
import { silentLogger } from "../../platform/logger.js";
import { notificationSettings } from "../../services/notification/index.js";
import { concurrencyLimit, serialByKey } from "../../services/notification/limiter.js";
import { createMailer } from "../../services/notification/mailer.js";
import { KINDS } from "../../services/notification/migrations.js";
import { decodeEvent, money } from "../../services/notification/notices.js";
import { classifySendError, redact } from "../../services/notification/smtp-errors.js";
import { deliveryIdOf } from "../../services/notification/store.js";
import { render } from "../../services/notification/templates/index.js";
import { eventMessage } from "./support.js";

const SAMPLE: Record<string, Record<string, string>> = {
  welcome: { email: "a@example.com" },
  new_device_login: { when: "w", ip: "203.0.113.7", userAgent: "UA" },
  password_changed: { when: "w" },
  account_locked: { until: "u" },
  email_changed: { newEmail: "n***@example.com", when: "w" },
  order_confirmation: { orderId: "o", shortId: "s", product: "p", quantity: "1", unitPrice: "1.00", total: "1.00" },
  order_status: { orderId: "o", shortId: "s", status: "shipped", previous: "confirmed", reason: "" },
  verify_email: { email: "a@example.com", change: "", link: "https://a.example/verify-email#token=t", token: "t", expires: "e" },
  signup_attempt: { email: "a@example.com", when: "w" },
  password_reset_request: { link: "https://a.example/reset-password#token=t", token: "t", expires: "e", when: "w" },
  password_reset: { when: "w" },
  second_factor_changed: { title: "Two-step verification was turned on", detail: "d", when: "w" },
};

describe("notification: templates, errors, settings, events", () => {
  it("every kind renders a one-line subject, a text part and an HTML part", () => {
    for (const kind of KINDS) {
      const m = render(kind, SAMPLE[kind]);
      assert.ok(m.subject && !/[\r\n]/.test(m.subject), kind);
      assert.ok(m.text.includes("automatic message") && m.html.includes("<!doctype html>"), kind);
      assert.ok(m.html.includes(`<title>${m.subject}</title>`), kind);
    }
  });

  it("HTML escapes every value; text and subject do not; a missing value is an error, not an empty string", () => {
    const m = render("new_device_login", { when: "now", ip: "1.2.3.4", userAgent: `<img src=x onerror="alert(1)">` });
    assert.ok(m.html.includes("&lt;img src&#x3D;x onerror&#x3D;&quot;alert(1)&quot;&gt;"), m.html);
    assert.ok(!m.html.includes("<img"));
    assert.ok(m.text.includes(`Device: <img src=x onerror="alert(1)">`));
    assert.equal(render("order_status", { ...SAMPLE.order_status, shortId: "a\r\nBcc: x" }).subject, "Order a Bcc: x is shipped", "no line break in a subject");
    assert.throws(() => render("welcome", {}), /"email" not defined/);
  });

  it("classifies send errors: 5xx permanent, 4xx and connection failures temporary; addresses masked", () => {
    const e550 = classifySendError(Object.assign(new Error("Can't send mail - all recipients were rejected: 550 5.1.1 <bob@example.com> unknown"), { responseCode: 550, code: "EENVELOPE" }));
    assert.deepEqual([e550.permanent, e550.smtpCode], [true, 550]);
    assert.match(e550.message, /^permanent failure: .*b\*\*\*@example\.com/);
    assert.ok(!e550.message.includes("bob@"));
    const e451 = classifySendError(Object.assign(new Error("Message failed"), { responseCode: 451, response: "451 4.3.0 later" }));
    assert.deepEqual([e451.permanent, e451.smtpCode, e451.message], [false, 451, "temporary failure: 451 4.3.0 later"]);
    for (const code of ["ECONNECTION", "ETIMEDOUT", "ESOCKET", "ECONNREFUSED"]) {
      const e = classifySendError(Object.assign(new Error("connect failed"), { code }));
      assert.deepEqual([e.permanent, e.smtpCode, e.message], [false, undefined, `temporary failure: ${code} connect failed`]);
    }
    assert.equal(classifySendError("weird").permanent, false);
    assert.ok(redact("x".repeat(1000)).length <= 400);
  });

  it("a mail server that is not there: a temporary failure within the connection timeout", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const mailer = createMailer(notificationSettings({ SMTP_URL: `smtp://127.0.0.1:${port}`, SMTP_CONNECTION_TIMEOUT_MS: "500" }, "/d").mailer, silentLogger);
    const started = Date.now();
    await assert.rejects(
      mailer.send({ deliveryId: randomUUID(), kind: "welcome", to: "a@example.com", subject: "s", text: "t", html: "<p>h</p>" }),
      (e: unknown) => (e as { permanent?: boolean }).permanent === false && /^temporary failure: E[A-Z]+ .*ECONNREFUSED/.test((e as Error).message),
    );
    assert.ok(Date.now() - started < 2000);
    mailer.close();
  });

  it("settings: defaults, and bad values stop the start naming the variable", () => {
    const d = notificationSettings({}, "/tmp/d");
    assert.equal(d.concurrency, 4);
    assert.deepEqual([d.maxAttempts, d.retryBaseMs, d.retryMaxMs, d.mailer.smtp, d.mailer.from, d.mailer.fromDomain, d.mailer.mailDir],
      [8, 1000, 300_000, undefined, "Acme <no-reply@acme.local>", "acme.local", "/tmp/d/mail"]);
    const smtp = notificationSettings({ SMTP_URL: "smtps://u%40x:p%3Aw@mail.example.com", NOTIFY_FROM: "ops@example.com" }, "/d").mailer;
    assert.deepEqual(smtp.smtp, { host: "mail.example.com", port: 465, secure: true, user: "u@x", pass: "p:w" });
    assert.equal(smtp.fromDomain, "example.com");
    const bad: [Record<string, string>, string][] = [
      [{ NOTIFY_MAX_ATTEMPTS: "0" }, "NOTIFY_MAX_ATTEMPTS"],
      [{ NOTIFY_RETRY_BASE_MS: "x" }, "NOTIFY_RETRY_BASE_MS"],
      [{ NOTIFY_RETRY_BASE_MS: "5000", NOTIFY_RETRY_MAX_MS: "1000" }, "NOTIFY_RETRY_MAX_MS"],
      [{ SMTP_URL: "http://mail" }, "SMTP_URL"],
      [{ NOTIFY_FROM: "not an address" }, "NOTIFY_FROM"],
      [{ SMTP_SOCKET_TIMEOUT_MS: "5" }, "SMTP_SOCKET_TIMEOUT_MS"],
      [{ NOTIFY_CONCURRENCY: "0" }, "NOTIFY_CONCURRENCY"],
    ];
    for (const [env, variable] of bad) {
      assert.throws(() => notificationSettings(env, "/d"), (e: unknown) => e instanceof ConfigError && e.variable === variable, variable);
    }
  });

  it("events: what each means; a bad id or address is poison; SessionRevoked asks for no mail; AccountDeleted erases", () => {
    const userId = randomUUID();
    const reg = decodeEvent(eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email: "a@example.com" }) }));
    assert.deepEqual([reg.notice?.kind, reg.notice?.category, reg.notice?.to, reg.recipient?.email], ["welcome", "account", "a@example.com", "a@example.com"]);
    const login = decodeEvent(eventMessage("user.login_new_device", {
      case: "loginFromNewDevice",
      value: create(LoginFromNewDeviceSchema, { userId, email: "a@example.com", ip: "203.0.113.7", userAgent: "curl\n/8" }),
    }, { occurredAt: new Date("2025-03-01T14:05:09Z") }));
    assert.deepEqual(login.notice?.data, { when: "2025-03-01 14:05 UTC", ip: "203.0.113.7", userAgent: "curl /8" });
    const cancelled = decodeEvent(eventMessage("order.cancelled", {
      case: "orderCancelled",
      value: create(OrderCancelledSchema, { orderId: randomUUID(), userId, fromStatus: OrderStatus.PENDING, reason: "expired" }),
    }));
    assert.deepEqual([cancelled.notice?.kind, cancelled.notice?.category, cancelled.notice?.to, cancelled.notice?.data.reason], ["order_status", "orders", undefined, "expired"]);
    assert.equal(decodeEvent(eventMessage("user.session_revoked", { case: "sessionRevoked", value: create(SessionRevokedSchema, { userId, sessionId: "s", reason: "logout" }) })).notice, undefined);
    const at = new Date("2025-03-01T14:05:09Z");
    const deleted = decodeEvent(eventMessage("user.deleted", { case: "accountDeleted", value: create(AccountDeletedSchema, { userId: userId.toUpperCase() }) }, { occurredAt: at }));
    assert.deepEqual([deleted.notice, deleted.recipient, deleted.erasure], [undefined, undefined, { userId, occurredAt: at }]);
    assert.throws(() => decodeEvent(eventMessage("user.deleted", { case: "accountDeleted", value: create(AccountDeletedSchema, { userId: "" }) })), PoisonMessage);
    assert.throws(() => decodeEvent(eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId: "nope", email: "a@example.com" }) })), PoisonMessage);
    assert.throws(() => decodeEvent(eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email: "a b@c" }) })), PoisonMessage);
    const envelope = create(EnvelopeSchema, { eventId: "x", occurredAt: timestampFromDate(new Date()) });
    assert.throws(() => decodeEvent({ id: "", type: "t", routingKey: "user.x", body: toBinary(EnvelopeSchema, envelope), headers: {} }), PoisonMessage);
    assert.equal(money(5997n), "59.97");
    assert.equal(money(5n), "0.05");
  });

  it("the consumers' concurrency limit: never more than max at once, all of them run, in order", async () => {
    const limit = concurrencyLimit(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => limit(async () => {
      started.push(i);
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (i === 3) throw new Error("a failed task frees its place");
    }).catch(() => undefined)));
    assert.equal(peak, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("one aggregate's events one at a time, in arrival order, through failures; other aggregates side by side", async () => {
    const serial = serialByKey();
    const log: string[] = [];
    const running = new Map<string, number>();
    const task = (key: string, i: number, ms: number, fail = false) =>
      serial(key, async () => {
        running.set(key, (running.get(key) ?? 0) + 1);
        assert.equal(running.get(key), 1, `only one task of ${key} at a time`);
        log.push(`${key}${i}`);
        await new Promise((r) => setTimeout(r, ms));
        running.set(key, running.get(key)! - 1);
        if (fail) throw new Error("failed");
      }).catch(() => undefined);
    // a1 is slow: a2 and a3 wait for it, b1 does not.
    await Promise.all([task("a", 1, 30, true), task("a", 2, 1), task("b", 1, 1), task("a", 3, 1)]);
    assert.deepEqual(log.filter((x) => x.startsWith("a")), ["a1", "a2", "a3"]);
    assert.ok(log.indexOf("b1") < log.indexOf("a2"), `b1 ran beside a1: ${log}`);
  });

  it("delivery ids are UUIDs derived from (event, kind): the same on every redelivery", () => {
    const e = randomUUID();
    assert.equal(deliveryIdOf(e, "welcome"), deliveryIdOf(e, "welcome"));
    assert.notEqual(deliveryIdOf(e, "welcome"), deliveryIdOf(e, "order_status"));
    assert.match(deliveryIdOf(e, "welcome"), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
