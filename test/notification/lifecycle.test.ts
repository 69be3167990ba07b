// The account lifecycle's mails (issue 18), from events made by hand: address
// verification (an account's address, or the new one of a change), a sign-up
// attempt with a taken address, a password reset (the request and the notice),
// a changed second factor. All of them are security mails (always sent). The
// two that carry a link token put it in the mail only: never in the delivery
// log, a log line or a dead-letter reason.
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { sql, type Kysely } from "kysely";
import {
  EmailVerificationRequestedSchema, PasswordChangedSchema, PasswordResetRequestedSchema, SecondFactorChangedSchema, SignupAttemptedSchema, UserRegisteredSchema,
  type Envelope,
} from "../../gen/acme/events/v1/events_pb.js";
import { PoisonMessage } from "../../platform/bus/bus.js";
import { ConfigError } from "../../platform/config.js";
import { migrate, openDatabase } from "../../platform/db.js";
import { createLogger } from "../../platform/logger.js";
import { notificationSettings } from "../../services/notification/index.js";
import { KINDS, migrations, SCHEMA } from "../../services/notification/migrations.js";
import { decodeEvent, when } from "../../services/notification/notices.js";
import { render } from "../../services/notification/templates/index.js";
import { freshDatabaseUrl } from "../support/fresh.js";
import { parseMime, type ParsedMail } from "./mime.js";
import { deliveriesOf, deliveryReaching, eventMessage, mailsTo, QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";

const ACCOUNT_URL = "https://acme.example/account";

/** A link token as the auth service makes them: 32 random bytes, base64url (43 characters). */
const newToken = () => randomBytes(32).toString("base64url");

const newUser = (tag = "u") => {
  const userId = randomUUID();
  return { userId, email: `${tag}-${userId.slice(0, 8)}@example.com` };
};

type UserEvent = Envelope["event"];

const verification = (userId: string, email: string, token: string, purpose: string, expiresAt = new Date(Date.now() + 86_400_000)): UserEvent => ({
  case: "emailVerificationRequested",
  value: create(EmailVerificationRequestedSchema, { userId, email, token, purpose, expiresAt: timestampFromDate(expiresAt) }),
});
const resetRequest = (userId: string, email: string, token: string, expiresAt = new Date(Date.now() + 3_600_000)): UserEvent => ({
  case: "passwordResetRequested",
  value: create(PasswordResetRequestedSchema, { userId, email, token, expiresAt: timestampFromDate(expiresAt) }),
});
const signupAttempt = (userId: string, email: string): UserEvent => ({ case: "signupAttempted", value: create(SignupAttemptedSchema, { userId, email }) });
const passwordChanged = (userId: string, email: string, via: string): UserEvent => ({ case: "passwordChanged", value: create(PasswordChangedSchema, { userId, email, via }) });
const secondFactor = (userId: string, email: string, change: string): UserEvent => ({ case: "secondFactorChanged", value: create(SecondFactorChangedSchema, { userId, email, change }) });

const ROUTING: Record<string, string> = {
  emailVerificationRequested: "user.verification_requested",
  signupAttempted: "user.signup_attempted",
  passwordResetRequested: "user.password_reset_requested",
  passwordChanged: "user.password_changed",
  secondFactorChanged: "user.second_factor_changed",
  userRegistered: "user.registered",
};

describe("notification: account lifecycle mails", function () {
  let s: NotificationSystem;
  const logLines: string[] = [];
  /** Every token put in an event by this suite: none may show up outside a mail. */
  const tokens: string[] = [];
  const token = () => {
    const t = newToken();
    tokens.push(t);
    return t;
  };

  before(async () => {
    const log = createLogger({}, { level: "debug", pretty: false, write: (line) => logLines.push(line) });
    // A trailing slash on the base is dropped: links are base + "/verify-email" ...
    s = await startNotificationSystem({ log, env: { NOTIFY_ACCOUNT_URL: `${ACCOUNT_URL}/` } });
  });
  after(async () => s?.stop());

  const publish = async (event: UserEvent, opts: { occurredAt?: Date } = {}) => {
    const m = eventMessage(ROUTING[event.case!], event, opts);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    return m;
  };

  /** The one mail an address received with a subject, parsed. */
  const mailTo = async (address: string, subject: string): Promise<ParsedMail> => {
    const found = await until(`a mail "${subject}" to ${address}`, () => {
      const mails = mailsTo(s.sink!, address).map((m) => parseMime(m.raw)).filter((m) => m.header("subject") === subject);
      return mails.length ? mails : undefined;
    });
    assert.equal(found.length, 1, `one mail "${subject}" to ${address}`);
    assert.equal(found[0].header("to"), address);
    return found[0];
  };

  /** The delivery log of a user (rows and attempts) as text: what must never hold a token. */
  const deliveryLogText = async (userId: string) => {
    const rows = await deliveriesOf(s, userId);
    const { rows: attempts } = await sql`select a.* from notify.delivery_attempts a join notify.deliveries d on d.id = a.delivery_id where d.user_id = ${userId}`.execute(s.t.system.db.db);
    return JSON.stringify({ rows, attempts });
  };

  const recipientOf = async (userId: string) =>
    (await sql<{ email: string | null }>`select email from notify.recipients where user_id = ${userId}`.execute(s.t.system.db.db)).rows[0]?.email;

  it("EmailVerificationRequested (verify): to the event's address, the link and the code in both parts; the log keeps the subject only", async () => {
    const { userId, email } = newUser("verify");
    const t = token();
    const expiresAt = new Date(Date.now() + 86_400_000);
    await publish(verification(userId, email, t, "verify", expiresAt));
    const d = await deliveryReaching(s, userId, "verify_email", ["SENT"]);
    assert.deepEqual([d.category, d.recipient, d.subject], ["security", email, "Confirm your email address"]);
    const mail = await mailTo(email, "Confirm your email address");
    const link = `${ACCOUNT_URL}/verify-email#token=${t}`;
    assert.ok(mail.text.includes(`\n${link}\n`), mail.text);
    assert.ok(mail.text.includes(`\nOr paste this code: ${t}\n`), "the code on its own line");
    assert.ok(mail.text.includes(when(expiresAt)));
    // In HTML the link is attribute-escaped ("=" as an entity), which a browser reads back as the link.
    const htmlLink = link.replace("=", "&#x3D;");
    assert.ok(mail.html.includes(`href="${htmlLink}"`), mail.html);
    assert.ok(mail.html.includes(`<code`) && mail.html.includes(`${t}</code>`));
    assert.ok(!(await deliveryLogText(userId)).includes(t), "no token in the delivery log");
    assert.equal(await recipientOf(userId), undefined, "a verification keeps no address");
  });

  it("EmailVerificationRequested (change_email): to the NEW address; the user's kept address stays the current one", async () => {
    const { userId, email: current } = newUser("cur");
    const next = `next-${userId.slice(0, 8)}@example.com`;
    await publish({ case: "userRegistered", value: create(UserRegisteredSchema, { userId, email: current }) });
    await deliveryReaching(s, userId, "welcome", ["SENT"]);
    const t = token();
    await publish(verification(userId, next, t, "change_email"));
    const d = await deliveryReaching(s, userId, "verify_email", ["SENT"]);
    assert.deepEqual([d.category, d.recipient, d.subject], ["security", next, "Confirm your new email address"]);
    const mail = await mailTo(next, "Confirm your new email address");
    assert.ok(mail.text.includes(`${ACCOUNT_URL}/verify-email#token=${t}`));
    assert.ok(mail.text.includes(`Or paste this code: ${t}`));
    assert.match(mail.text, /keeps going to your current address/);
    assert.ok(mail.html.includes(t));
    assert.equal(mailsTo(s.sink!, current).length, 1, "only the welcome mail at the current address");
    assert.equal(await recipientOf(userId), current, "not changed until verified (EmailChanged)");
    assert.ok(!(await deliveryLogText(userId)).includes(t));
  });

  it("SignupAttempted: the owner is told an account exists, with the reset hint and no link", async () => {
    const { userId, email } = newUser("signup");
    await publish(signupAttempt(userId, email));
    const d = await deliveryReaching(s, userId, "signup_attempt", ["SENT"]);
    assert.deepEqual([d.category, d.recipient, d.subject], ["security", email, "Someone tried to sign up with your address"]);
    const mail = await mailTo(email, "Someone tried to sign up with your address");
    assert.match(mail.text, /already has an\s+account/);
    assert.match(mail.text, /password\s+reset/);
    assert.ok(!mail.text.includes("http") && !/<a /.test(mail.html), "no link");
  });

  it("PasswordResetRequested: the reset link and the code, its expiry, and 'your password is unchanged'", async () => {
    const { userId, email } = newUser("reset");
    const t = token();
    const expiresAt = new Date(Date.now() + 3_600_000);
    await publish(resetRequest(userId, email, t, expiresAt));
    const d = await deliveryReaching(s, userId, "password_reset_request", ["SENT"]);
    assert.deepEqual([d.category, d.recipient, d.subject], ["security", email, "Reset your Acme password"]);
    const mail = await mailTo(email, "Reset your Acme password");
    const link = `${ACCOUNT_URL}/reset-password#token=${t}`;
    assert.ok(mail.text.includes(`\n${link}\n`), mail.text);
    assert.ok(mail.text.includes(`\nOr paste this code: ${t}\n`));
    assert.ok(mail.text.includes(`before ${when(expiresAt)}`));
    assert.match(mail.text, /If you did not ask, ignore this mail: your password is unchanged\./);
    assert.ok(mail.html.includes(`href="${link.replace("=", "&#x3D;")}"`));
    assert.ok(mail.html.includes(`${t}</code>`));
    assert.ok(!(await deliveryLogText(userId)).includes(t), "no token in the delivery log");
  });

  it("PasswordChanged: via reset is 'was reset' (every session signed out); via change or '' is 'was changed'", async () => {
    const { userId, email } = newUser("pw");
    await publish(passwordChanged(userId, email, "reset"));
    await publish(passwordChanged(userId, email, "change"));
    await publish(passwordChanged(userId, email, ""));
    const reset = await deliveryReaching(s, userId, "password_reset", ["SENT"]);
    assert.deepEqual([reset.category, reset.subject], ["security", "Your Acme password was reset"]);
    const mail = await mailTo(email, "Your Acme password was reset");
    assert.match(mail.text, /Every\s+session was signed out/);
    await until("two password_changed mails", async () => (await deliveriesOf(s, userId)).filter((d) => d.kind === "password_changed" && d.status === "SENT").length === 2);
    const changed = mailsTo(s.sink!, email).map((m) => parseMime(m.raw)).filter((m) => m.header("subject") === "Your Acme password was changed");
    assert.equal(changed.length, 2);
    assert.match(changed[0].text, /Your other sessions were signed out/);
  });

  it("SecondFactorChanged: one mail per change, worded for it", async () => {
    const { userId, email } = newUser("2fa");
    const expected: Record<string, [string, RegExp]> = {
      totp_enabled: ["Two-step verification was turned on for your Acme account", /code from your authenticator app/],
      totp_disabled: ["Two-step verification was turned off for your Acme account", /asks for your password only/],
      recovery_codes_regenerated: ["New recovery codes were created for your Acme account", /codes you had before no longer work/],
      reset_by_admin: ["An administrator reset two-step verification on your Acme account", /administrator reset/],
    };
    for (const change of Object.keys(expected)) await publish(secondFactor(userId, email, change));
    await until("four second_factor_changed mails", async () => (await deliveriesOf(s, userId)).filter((d) => d.kind === "second_factor_changed" && d.status === "SENT").length === 4);
    assert.deepEqual((await deliveriesOf(s, userId)).map((d) => d.category), ["security", "security", "security", "security"]);
    for (const [subject, body] of Object.values(expected)) {
      const mail = await mailTo(email, subject);
      assert.match(mail.text, body);
      assert.match(mail.html, body);
    }
  });

  it("every optional category off: all of these mails are still sent (security)", async () => {
    const { userId, email } = newUser("quiet");
    await sql`insert into notify.preferences (user_id, account, orders) values (${userId}, false, false)`.execute(s.t.system.db.db);
    await publish({ case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) });
    await deliveryReaching(s, userId, "welcome", ["SUPPRESSED"]); // the preferences are in force
    const events = [
      verification(userId, email, token(), "verify"),
      verification(userId, email, token(), "change_email"),
      signupAttempt(userId, email),
      resetRequest(userId, email, token()),
      passwordChanged(userId, email, "reset"),
      secondFactor(userId, email, "totp_disabled"),
    ];
    for (const e of events) await publish(e);
    const kinds = ["verify_email", "signup_attempt", "password_reset_request", "password_reset", "second_factor_changed"];
    const rows = await until("every security mail decided", async () => {
      const r = (await deliveriesOf(s, userId)).filter((d) => d.kind !== "welcome");
      return r.length === events.length && r.every((d) => d.status !== "QUEUED") ? r : undefined;
    });
    assert.deepEqual([...new Set(rows.map((d) => d.kind))].sort(), [...kinds].sort());
    assert.deepEqual(rows.map((d) => [d.status, d.category]), rows.map(() => ["SENT", "security"]));
    await until("the mails", () => mailsTo(s.sink!, email).length === events.length);
  });

  it("a bad token, an unknown purpose or change: dead-lettered at once as poison (no token in the reason), and the consumer carries on", async () => {
    const { userId, email } = newUser("poison");
    const good = newToken();
    const bad: UserEvent[] = [
      verification(userId, email, good.slice(0, 42), "verify"), // too short
      verification(userId, email, `${good}A`, "verify"), // too long
      verification(userId, email, `${good.slice(0, 42)}+`, "verify"), // not base64url
      verification(userId, email, `${good.slice(0, 42)}=`, "verify"),
      verification(userId, email, "", "verify"),
      verification(userId, email, good, "reset"), // unknown purpose
      verification(userId, email, good, ""),
      resetRequest(userId, email, `${good.slice(0, 40)}...`),
      resetRequest(userId, "not an address", good),
      secondFactor(userId, email, "sms_enabled"), // unknown change
      secondFactor(userId, email, ""),
      secondFactor(userId, email, "toString"),
    ];
    tokens.push(good);
    const ids: string[] = [];
    for (const e of bad) ids.push((await publish(e)).id);
    const after = newUser("after");
    await publish(signupAttempt(after.userId, after.email));
    await deliveryReaching(s, after.userId, "signup_attempt", ["SENT"]);
    await s.bus.idle();
    const dead = s.bus.deadLetters(QUEUES.userEvents.queue).filter((d) => ids.includes(d.message.id));
    assert.equal(dead.length, bad.length, "every bad event dead-lettered");
    for (const d of dead) {
      assert.equal(d.attempts, 1, "at once");
      assert.match(d.reason, /event has no valid (token|purpose|change|email)/);
      assert.ok(!d.reason.includes(good.slice(0, 40)), "no token in the reason");
    }
    assert.deepEqual(await deliveriesOf(s, userId), [], "no delivery for a poison event");
    assert.equal(mailsTo(s.sink!, email).length, 0);
  });

  it("no token of this suite in any log line", async () => {
    await s.bus.idle();
    assert.ok(logLines.some((l) => l.includes('"mail sent"') && l.includes("Reset your Acme password")), "the mailer's lines were captured");
    const leaked = tokens.filter((t) => logLines.some((l) => l.includes(t) || l.includes(t.slice(0, 20))));
    assert.deepEqual(leaked, []);
  });
});

describe("notification: account lifecycle (units)", () => {
  it("NOTIFY_ACCOUNT_URL: default, trailing slash dropped; not http(s), a query, a fragment or credentials stop the start", () => {
    assert.equal(notificationSettings({}, "/d").accountUrl, "http://localhost:8080/account");
    assert.equal(notificationSettings({ NOTIFY_ACCOUNT_URL: "https://acme.example/" }, "/d").accountUrl, "https://acme.example");
    assert.equal(notificationSettings({ NOTIFY_ACCOUNT_URL: "https://acme.example/me/account//" }, "/d").accountUrl, "https://acme.example/me/account");
    for (const bad of ["ftp://acme.example/account", "javascript:alert(1)", "account", "https://acme.example/account?x=1", "https://acme.example/account#x", "https://u:p@acme.example/account"]) {
      assert.throws(() => notificationSettings({ NOTIFY_ACCOUNT_URL: bad }, "/d"), (e: unknown) => e instanceof ConfigError && e.variable === "NOTIFY_ACCOUNT_URL", bad);
    }
  });

  it("decoding: security category, the address the event names, no recipient change; links from the given base", () => {
    const userId = randomUUID();
    const t = newToken();
    const v = decodeEvent(eventMessage("user.verification_requested", verification(userId, "new@example.com", t, "change_email")), "https://x.example/acc");
    assert.deepEqual([v.notice?.kind, v.notice?.category, v.notice?.to, v.recipient], ["verify_email", "security", "new@example.com", undefined]);
    assert.equal(v.notice?.data.link, `https://x.example/acc/verify-email#token=${t}`);
    const r = decodeEvent(eventMessage("user.password_reset_requested", resetRequest(userId, "a@example.com", t)));
    assert.equal(r.notice?.data.link, `http://localhost:8080/account/reset-password#token=${t}`);
    for (const via of ["change", "", "something-new"]) {
      assert.equal(decodeEvent(eventMessage("user.password_changed", passwordChanged(userId, "a@example.com", via))).notice?.kind, "password_changed", via);
    }
    assert.equal(decodeEvent(eventMessage("user.password_changed", passwordChanged(userId, "a@example.com", "reset"))).notice?.kind, "password_reset");
    // No expiry from the producer: the mail says nothing of one (it is not dropped).
    const noExpiry = decodeEvent(eventMessage("user.password_reset_requested", { case: "passwordResetRequested", value: create(PasswordResetRequestedSchema, { userId, email: "a@example.com", token: t }) }));
    assert.equal(noExpiry.notice?.data.expires, "");
    assert.ok(!render("password_reset_request", noExpiry.notice!.data).text.includes("before"));
    assert.throws(() => decodeEvent(eventMessage("user.signup_attempted", signupAttempt("nope", "a@example.com"))), PoisonMessage);
    assert.throws(() => decodeEvent(eventMessage("user.second_factor_changed", secondFactor(userId, "a b@c", "totp_enabled"))), PoisonMessage);
  });

  it("every lifecycle kind renders a subject of at most 200 characters, with no token in it", () => {
    const t = newToken();
    const userId = randomUUID();
    const events = [
      verification(userId, "a@example.com", t, "verify"), verification(userId, "a@example.com", t, "change_email"), signupAttempt(userId, "a@example.com"),
      resetRequest(userId, "a@example.com", t), passwordChanged(userId, "a@example.com", "reset"),
      ...["totp_enabled", "totp_disabled", "recovery_codes_regenerated", "reset_by_admin"].map((c) => secondFactor(userId, "a@example.com", c)),
    ];
    for (const e of events) {
      const n = decodeEvent(eventMessage("user.x", e)).notice!;
      const m = render(n.kind, n.data);
      assert.ok(m.subject.length >= 1 && m.subject.length <= 200 && !m.subject.includes(t), m.subject);
      assert.ok(m.html.includes(`<title>${m.subject}</title>`));
    }
  });
});

describe("notification: migration 004_lifecycle_kinds", () => {
  /** A database migrated as before 004 (the kind check with the seven first kinds), then to the latest. */
  async function upgrade(db: Kysely<any>) {
    const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < "004"));
    await migrate(db, SCHEMA, before);
    const old = ["welcome", "new_device_login", "password_changed", "account_locked", "email_changed", "order_confirmation", "order_status"];
    await sql`alter table notify.deliveries drop constraint deliveries_kind_check, add constraint deliveries_kind_check check (kind in (${sql.join(old.map((k) => sql.lit(k)))}))`.execute(db);
    await migrate(db, SCHEMA, migrations);
    const insert = (kind: string) => sql`
      insert into notify.deliveries (id, event_id, kind, category, user_id, recipient, subject, status)
      values (${randomUUID()}, ${randomUUID()}, ${kind}, 'security', ${randomUUID()}, 'a@example.com', 's', 'QUEUED')`.execute(db);
    for (const kind of KINDS) await insert(kind);
    await assert.rejects(insert("not_a_kind"), /deliveries_kind_check/);
    const { rows } = await sql<{ conname: string }>`
      select conname from pg_constraint where conrelid = 'notify.deliveries'::regclass and contype = 'c' and conname like '%kind%'`.execute(db);
    assert.deepEqual(rows.map((r) => r.conname), ["deliveries_kind_check"]);
  }

  it("on Postgres", async () => {
    const db = await openDatabase({ url: await freshDatabaseUrl(), dataDir: "/nonexistent" });
    try {
      await upgrade(db.db);
    } finally {
      await db.close();
    }
  });

  it("on the embedded database (PGlite)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "acme-notify-004-"));
    const db = await openDatabase({ dataDir: dir });
    try {
      await upgrade(db.db);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
