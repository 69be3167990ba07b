// `npm start` without SMTP_URL: each mail is written as a .eml file under
// <DATA_DIR>/mail/ and logged without the full address. On the embedded
// database (PGlite, one connection), which is what npm start runs: a failed
// attempt is recorded after the consumer's transaction rolled back, so the
// single connection is never waited on by itself.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import { createLogger } from "../../platform/logger.js";
import { parseMime } from "./mime.js";
import { deliveryReaching, eventMessage, QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";

describe("notification: mail as .eml files (npm start, embedded database)", function () {
  let s: NotificationSystem;
  const lines: string[] = [];
  before(async () => {
    s = await startNotificationSystem({
      smtp: false,
      database: "pglite",
      store: "memory",
      log: createLogger({}, { level: "info", pretty: false, write: (l) => lines.push(l) }),
    });
  });
  after(async () => s?.stop());

  const mailDir = () => join(s.t.dataDir, "mail");
  const emlFiles = () => readdirSync(mailDir()).filter((f) => f.endsWith(".eml"));

  it("writes <timestamp>-<delivery id>.eml with both parts, and logs the file with the address masked", async () => {
    const userId = randomUUID();
    const email = `files-${userId.slice(0, 8)}@example.org`;
    await s.bus.publish(QUEUES.userEvents.exchange, eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) }));
    const d = await deliveryReaching(s, userId, "welcome", ["SENT"]);
    const file = emlFiles().find((f) => f.endsWith(`-${d.id}.eml`));
    assert.ok(file, `a file for ${d.id} in ${emlFiles()}`);
    assert.match(file, /^\d{8}T\d{9}Z-/);
    const mail = parseMime(readFileSync(join(mailDir(), file), "utf8"));
    assert.equal(mail.header("to"), email);
    assert.equal(mail.header("subject"), "Welcome to Acme");
    assert.equal(mail.header("message-id"), `<${d.id}@acme.local>`);
    assert.match(mail.text, /is ready/);
    assert.match(mail.html, /<strong>files-[0-9a-f]{8}@example\.org<\/strong>/);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "mail written" && l.delivery_id === d.id);
    assert.ok(logged, "a log line for the file");
    assert.equal(logged.to, "f***@example.org");
    assert.equal(logged.file, join(mailDir(), file));
    assert.ok(!lines.some((l) => l.includes(email)), "the full address is in no log line");
  });

  it("a failed write is a temporary failure, recorded and retried; the next attempt writes the file", async () => {
    // A file where the mail directory should be: the write fails until it is gone.
    const dir = mailDir();
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, "not a directory");
    const userId = randomUUID();
    const email = `later-${userId.slice(0, 8)}@example.org`;
    await s.bus.publish(QUEUES.userEvents.exchange, eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) }));
    const retrying = await deliveryReaching(s, userId, "welcome", ["RETRYING"]);
    assert.match(retrying.last_error!, /^temporary failure: /);
    rmSync(dir, { force: true });
    const d = await deliveryReaching(s, userId, "welcome", ["SENT"]);
    assert.ok(d.attempts >= 2);
    await until("the file", () => emlFiles().some((f) => f.endsWith(`-${d.id}.eml`)));
  });
});
