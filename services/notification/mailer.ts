// Mail out, through nodemailer. With SMTP_URL (smtp://host:port, smtps:// for
// implicit TLS; credentials in the URL if the server wants them) each mail is
// one SMTP conversation with bounded connection, greeting and socket timeouts.
// Without it (`npm start`) each mail is written as a .eml file under
// <DATA_DIR>/mail/ and a log line names it. Every mail has a text and an HTML
// part and a Message-ID made from its delivery id; the send is a CLIENT span
// ("smtp send") in the consumer's trace, with no address of a recipient on it.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import nodemailer from "nodemailer";
import { ConfigError, int, str, url } from "../../platform/config.js";
import { maskEmail, type Logger } from "../../platform/logger.js";
import { tracer } from "../../platform/telemetry/rpc-span.js";
import { classifySendError, replyCode } from "./smtp-errors.js";

export interface MailerSettings {
  /** Undefined: write .eml files to mailDir. */
  smtp?: { host: string; port: number; secure: boolean; user?: string; pass?: string };
  /** The From header. */
  from: string;
  /** Domain of the From address: the right-hand side of every Message-ID. */
  fromDomain: string;
  connectionTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
  mailDir: string;
}

const FROM_RE = /^(?:[^<>\r\n]*<([^<>\s@]+@([^<>\s@]+))>|([^<>\s@]+@([^<>\s@]+)))$/;

/**
 *   SMTP_URL                      smtp://host:port or smtps://host:port (unset: .eml files)
 *   NOTIFY_FROM                   From header (default "Acme <no-reply@acme.local>")
 *   SMTP_CONNECTION_TIMEOUT_MS    TCP connect (default 5000)
 *   SMTP_GREETING_TIMEOUT_MS      server greeting after connect (default 5000)
 *   SMTP_SOCKET_TIMEOUT_MS        inactivity during the conversation (default 15000)
 */
export function mailerSettings(env: Record<string, string | undefined>, dataDir: string): MailerSettings {
  const from = str(env, "NOTIFY_FROM", "Acme <no-reply@acme.local>").trim();
  const m = FROM_RE.exec(from);
  if (!m) throw new ConfigError("NOTIFY_FROM", 'must be an address, or "Name <address>"');
  const raw = url(env, "SMTP_URL", ["smtp:", "smtps:"]);
  let smtp: MailerSettings["smtp"];
  if (raw) {
    const u = new URL(raw);
    if (!u.hostname) throw new ConfigError("SMTP_URL", "must name a host");
    const secure = u.protocol === "smtps:";
    smtp = {
      host: u.hostname.replace(/^\[|\]$/g, ""),
      port: u.port ? Number(u.port) : secure ? 465 : 587,
      secure,
      user: u.username ? decodeURIComponent(u.username) : undefined,
      pass: u.password ? decodeURIComponent(u.password) : undefined,
    };
  }
  return {
    smtp,
    from,
    fromDomain: (m[2] ?? m[4]).toLowerCase(),
    connectionTimeoutMs: int(env, "SMTP_CONNECTION_TIMEOUT_MS", 5000, 100, 120_000),
    greetingTimeoutMs: int(env, "SMTP_GREETING_TIMEOUT_MS", 5000, 100, 120_000),
    socketTimeoutMs: int(env, "SMTP_SOCKET_TIMEOUT_MS", 15_000, 100, 600_000),
    mailDir: join(dataDir, "mail"),
  };
}

export interface OutgoingMail {
  deliveryId: string;
  kind: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface SentMail {
  /** The server's reply code (SMTP). */
  smtpCode?: number;
  /** Where the message was written (no SMTP_URL). */
  file?: string;
}

export interface Mailer {
  /** Hand one mail over; throws a SendFailure (smtp-errors.ts) when that fails. */
  send(mail: OutgoingMail): Promise<SentMail>;
  /** "smtp host:port" or "files in <dir>" (no credentials). */
  readonly target: string;
  close(): void;
}

/** "20250301T140501123Z" */
const stamp = (d: Date) => d.toISOString().replace(/[-:.]/g, "");

export function createMailer(s: MailerSettings, log: Logger): Mailer {
  const transport = s.smtp
    ? nodemailer.createTransport({
        host: s.smtp.host,
        port: s.smtp.port,
        secure: s.smtp.secure,
        auth: s.smtp.user ? { user: s.smtp.user, pass: s.smtp.pass ?? "" } : undefined,
        connectionTimeout: s.connectionTimeoutMs,
        greetingTimeout: s.greetingTimeoutMs,
        socketTimeout: s.socketTimeoutMs,
        dnsTimeout: s.connectionTimeoutMs,
        disableFileAccess: true,
        disableUrlAccess: true,
      })
    : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  const target = s.smtp ? `smtp ${s.smtp.host}:${s.smtp.port}` : `files in ${s.mailDir}`;
  const spanAttributes: Attributes = s.smtp
    ? { "server.address": s.smtp.host, "server.port": s.smtp.port, "network.transport": "tcp" }
    : { "acme.mail.dir": s.mailDir };

  const deliver = async (mail: OutgoingMail): Promise<SentMail> => {
    const info = await transport.sendMail({
      from: s.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      messageId: `<${mail.deliveryId}@${s.fromDomain}>`,
      headers: { "Auto-Submitted": "auto-generated" },
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    const logged = { to: maskEmail(mail.to), subject: mail.subject, delivery_id: mail.deliveryId };
    if (s.smtp) {
      const smtpCode = replyCode(info.response) ?? 250;
      log.info("mail sent", { ...logged, smtp_code: smtpCode });
      return { smtpCode };
    }
    await mkdir(s.mailDir, { recursive: true });
    const file = join(s.mailDir, `${stamp(new Date())}-${mail.deliveryId}.eml`);
    await writeFile(file, info.message as Buffer, { mode: 0o600 });
    log.info("mail written", { ...logged, file });
    return { file };
  };

  return {
    target,
    async send(mail) {
      const span = tracer().startSpan(s.smtp ? "smtp send" : "mail write", {
        kind: s.smtp ? SpanKind.CLIENT : SpanKind.INTERNAL,
        attributes: { ...spanAttributes, "acme.notification.kind": mail.kind, "acme.delivery.id": mail.deliveryId },
      });
      try {
        const sent = await context.with(trace.setSpan(context.active(), span), () => deliver(mail));
        if (sent.smtpCode) span.setAttribute("acme.smtp.response_code", sent.smtpCode);
        return sent;
      } catch (err) {
        const failure = classifySendError(err);
        if (failure.smtpCode) span.setAttribute("acme.smtp.response_code", failure.smtpCode);
        span.setAttribute("error.type", failure.permanent ? "permanent" : "temporary");
        // The redacted reason only: nodemailer's own message may carry addresses.
        span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
        throw failure;
      } finally {
        span.end();
      }
    },
    close: () => transport.close(),
  };
}
