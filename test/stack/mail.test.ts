// Mailpit, the SMTP server of `npm run stack` (scripts/stack/mailpit.ts), as the
// notification tests use it (test/support/mailpit.ts): what is sent over SMTP is
// listed and readable through its API, chaos makes SMTP refuse with the code a
// test asks for, and a restart is an outage that keeps the messages.
import { strict as assert } from "node:assert";
import nodemailer from "nodemailer";
import { always, startMailpit, type OwnMailpit } from "../support/mailpit.js";

describe("mailpit (the stack's SMTP server)", function () {
  this.timeout(30_000);
  let mail: OwnMailpit;
  const send = (to: string, subject: string) =>
    nodemailer.createTransport(mail.smtpUrl).sendMail({
      from: "Acme <no-reply@acme.local>",
      to,
      subject,
      text: `Hello ${to}`,
      html: `<p>Hello <b>${to}</b></p>`,
      headers: { "X-Acme-Notice": "test" },
    });
  const refusal = (p: Promise<unknown>) => p.then(() => assert.fail("sent"), (err: { responseCode?: number; code?: string }) => err.responseCode ?? err.code);

  before(async () => {
    mail = await startMailpit();
  });
  after(() => mail?.close());
  beforeEach(async () => {
    await mail.chaos("off");
    await mail.deleteAll();
  });

  it("lists a message sent over SMTP, with its text, HTML and headers", async () => {
    await send("ada@example.com", "Welcome");
    const found = await mail.waitFor((m) => m.Subject === "Welcome", 5000);
    assert.deepEqual(found.To.map((a) => a.Address), ["ada@example.com"]);
    assert.equal(found.From?.Address, "no-reply@acme.local");
    const m = await mail.message(found.ID);
    assert.equal(m.Text.trim(), "Hello ada@example.com");
    assert.match(m.HTML, /<b>ada@example\.com<\/b>/);
    assert.deepEqual(m.Headers["X-Acme-Notice"], ["test"]);
    assert.deepEqual((await mail.to("ADA@example.com")).map((x) => x.ID), [found.ID]);
    assert.equal((await mail.messages({ query: "subject:Welcome" })).length, 1);
    await mail.deleteAll();
    assert.deepEqual(await mail.messages(), []);
  });

  it("serves its web inbox: the page and the UI's script and styles it loads (built at install: scripts/tools/mailpit-ui)", async () => {
    const page = await fetch(`${mail.url}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    for (const [asset, type, min] of [["app.js", /javascript/, 100_000], ["app.css", /css/, 50_000]] as const) {
      const ref = new RegExp(`/dist/${asset.replace(".", "\\.")}[^"']*`).exec(html)?.[0];
      assert.ok(ref, `the page loads /dist/${asset}`);
      const r = await fetch(`${mail.url}${ref}`);
      assert.equal(r.status, 200, `${ref}: ${r.status}`);
      assert.match(r.headers.get("content-type") ?? "", type);
      assert.ok((await r.arrayBuffer()).byteLength > min, `${asset} is the built UI`);
    }
  });

  it("chaos: every recipient refused with 451, then 550, then accepted again", async () => {
    assert.equal((await mail.chaos({ Recipient: always(451) })).Recipient.Probability, 100);
    assert.equal(await refusal(send("bob@example.com", "Temporary")), 451);
    await mail.chaos({ Recipient: always(550) });
    assert.equal(await refusal(send("bob@example.com", "Permanent")), 550);
    await mail.chaos({ Sender: always(421) });
    assert.equal(await refusal(send("bob@example.com", "Sender")), 421);
    const off = await mail.chaos("off");
    assert.deepEqual([off.Sender.Probability, off.Recipient.Probability, off.Authentication.Probability], [0, 0, 0]);
    await send("bob@example.com", "Accepted");
    await mail.waitFor((m) => m.Subject === "Accepted", 5000);
    assert.deepEqual((await mail.messages()).map((m) => m.Subject), ["Accepted"]);
  });

  it("stopped, SMTP is refused; started again, the messages are still there", async () => {
    await send("cy@example.com", "Before");
    await mail.waitFor((m) => m.Subject === "Before", 5000);
    await mail.stop();
    assert.equal(await refusal(send("cy@example.com", "During")), "ESOCKET");
    await mail.start();
    assert.deepEqual((await mail.messages()).map((m) => m.Subject), ["Before"]);
  });
});
