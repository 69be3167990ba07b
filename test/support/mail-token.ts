// The token of a mailed link, read the way a user reads it: from the mail in
// the SMTP server's inbox (Mailpit, under the stack) or from the .eml files
// `npm start` writes into <DATA_DIR>/mail/. `link` is the link's page:
// "verify-email" or "reset-password" (services/notification/templates).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseMime } from "../notification/mime.js";
import { Mailpit } from "./mailpit.js";

export type MailSource = { mailpitUrl: string } | { dataDir: string };
export type TokenLink = "verify-email" | "reset-password";

const tokenIn = (link: TokenLink, text: string) => new RegExp(`/${link}#token=([A-Za-z0-9_-]{43})`).exec(text)?.[1];

/** The mails sent to `to` (text and HTML parts), oldest first. */
async function mailsTo(source: MailSource, to: string): Promise<string[]> {
  const address = to.toLowerCase();
  if ("mailpitUrl" in source) {
    const mailpit = new Mailpit(source.mailpitUrl);
    const list = (await mailpit.messages({ query: `to:"${address}"`, limit: 50 })).filter((m) => m.To.some((a) => a.Address.toLowerCase() === address));
    const bodies = await Promise.all(list.map(async (m) => mailpit.message(m.ID).then((full) => `${full.Text}\n${full.HTML}`)));
    return bodies.reverse();
  }
  const dir = join(source.dataDir, "mail");
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".eml")).sort();
  } catch {
    return [];
  }
  return files
    .map((f) => parseMime(readFileSync(join(dir, f), "utf8")))
    .filter((m) => (m.header("to") ?? "").toLowerCase().includes(address))
    .map((m) => `${m.text}\n${m.html}`);
}

/** The token of the newest `link` mail to `to`, waiting for it up to `timeoutMs`. */
export async function tokenFromMail(source: MailSource, to: string, link: TokenLink, timeoutMs = 20_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const tokens = (await mailsTo(source, to)).map((m) => tokenIn(link, m)).filter((t): t is string => !!t);
    if (tokens.length) return tokens[tokens.length - 1];
    if (Date.now() > until) throw new Error(`no ${link} mail to ${to} within ${timeoutMs} ms`);
    await sleep(100);
  }
}
