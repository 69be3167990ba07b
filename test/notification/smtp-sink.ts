// A real SMTP server on loopback for the notification tests (npm smtp-server):
// it accepts every mail (250) and keeps it raw, or answers a chosen 4xx or 5xx
// at the end of DATA, a given number of times or until told otherwise.
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  /** MAIL FROM. */
  from: string;
  /** RCPT TO, in order. */
  to: string[];
  /** The message as received (headers and MIME body). */
  raw: string;
}

export interface SmtpSink {
  readonly port: number;
  /** smtp://127.0.0.1:<port> */
  readonly url: string;
  /** Mails accepted (250), oldest first. */
  readonly mails: ReceivedMail[];
  /** Mails answered with a refusal. */
  readonly refused: number;
  /** Answer `code` (4xx or 5xx) to the next `times` mails (default: until accept()). */
  refuse(code: number, message: string, times?: number): void;
  /** Accept every mail from now on. */
  accept(): void;
  close(): Promise<void>;
}

type SmtpError = Error & { responseCode?: number };

export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  let refusal: { code: number; message: string; left: number } | undefined;
  let refused = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    size: 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (refusal && refusal.left > 0) {
          refusal.left--;
          refused++;
          const err: SmtpError = new Error(refusal.message);
          err.responseCode = refusal.code;
          return callback(err);
        }
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
        mails.push({ from, to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
        callback(null);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    get refused() {
      return refused;
    },
    refuse(code, message, times = Number.POSITIVE_INFINITY) {
      refusal = { code, message, left: times };
    },
    accept() {
      refusal = undefined;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
