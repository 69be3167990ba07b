// Mailpit (scripts/tools/versions.json): the SMTP server the notification
// service sends to, keeping every message in its own database for its HTTP API
// (GET /api/v1/messages, /api/v1/message/{id}; test/support/mailpit.ts) and web
// UI. On loopback only, nothing asked of the network: no reverse DNS of SMTP
// clients, no release check. Chaos is on, so a test can make SMTP answer
// 4xx/5xx through PUT /api/v1/chaos.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { toolPath } from "../tools/index.js";
import { httpOk, startProcess, tcpOpen, type Managed } from "./process.js";

export interface MailpitOptions {
  /** Its database (dir/mailpit.db: messages survive a restart) and, unless told, its log; made when missing. */
  dir: string;
  smtpPort: number;
  httpPort: number;
  logFile?: string;
  /** The chaos API (PUT /api/v1/chaos), default on. */
  chaos?: boolean;
}

/** smtp://127.0.0.1:<smtp> (the notification service's SMTP_URL) and http://127.0.0.1:<http> (web UI and API). */
export const mailpitUrls = (o: { smtpPort: number; httpPort: number }) => ({
  smtpUrl: `smtp://127.0.0.1:${o.smtpPort}`,
  url: `http://127.0.0.1:${o.httpPort}`,
});

export function startMailpit(opts: MailpitOptions): Promise<Managed> {
  const { url } = mailpitUrls(opts);
  mkdirSync(opts.dir, { recursive: true });
  return startProcess({
    name: "mailpit",
    command: toolPath("mailpit"),
    args: [
      "--smtp", `127.0.0.1:${opts.smtpPort}`,
      "--listen", `127.0.0.1:${opts.httpPort}`,
      "--database", join(opts.dir, "mailpit.db"),
      // Any sender and recipient, no AUTH, no TLS: a local sink (SMTP_URL carries no credentials).
      "--smtp-disable-rdns",
      // Keep up to 20,000 messages (Mailpit's default keeps the last 500): a load test's mails all stay countable.
      "--max", "20000",
      "--disable-version-check",
      ...(opts.chaos === false ? [] : ["--enable-chaos"]),
    ],
    // Only PATH: MP_* variables of the caller's environment would override the flags.
    env: { PATH: process.env.PATH },
    logFile: opts.logFile ?? join(opts.dir, "mailpit.log"),
    ready: async () => (await httpOk(`${url}/readyz`, (s) => s === 200)) && (await tcpOpen(opts.smtpPort)),
  });
}
