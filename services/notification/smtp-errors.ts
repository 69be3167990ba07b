// What a failed send means: a reply of the mail server (nodemailer's
// responseCode) in 5xx is permanent (the same mail would be refused again), 4xx
// is temporary; no reply at all (refused, timed out, connection lost, DNS) is
// temporary too. Unknown errors count as temporary: the bus retries them a
// bounded number of times, then dead-letters them.
import { maskEmail } from "../../platform/logger.js";

/** Reasons are stored (deliveries.last_error, the dead letter's x-failure-reason): bounded. */
export const REASON_MAX = 400;

/** A send that failed, classified, with a reason fit for logs and the delivery log (addresses masked). */
export class SendFailure extends Error {
  override readonly name = "SendFailure";
  constructor(
    readonly permanent: boolean,
    /** The server's reply code, when it replied. */
    readonly smtpCode: number | undefined,
    reason: string,
  ) {
    super(reason);
  }
}

const ADDRESS = /[^\s<>()[\]"',;:@]+@[^\s<>()[\]"',;:@]+/g;

/** Text with every email address masked ("a***@example.com"), on one line, bounded. */
export function redact(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(ADDRESS, (a) => maskEmail(a)).replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return line.length > REASON_MAX ? `${line.slice(0, REASON_MAX - 1)}…` : line;
}

/** The reply code at the start of an SMTP response line ("250 2.0.0 Ok" -> 250). */
export function replyCode(response: unknown): number | undefined {
  const m = typeof response === "string" ? /^([2-5]\d\d)\b/.exec(response) : null;
  return m ? Number(m[1]) : undefined;
}

/** nodemailer's error (or any other) as a SendFailure. */
export function classifySendError(err: unknown): SendFailure {
  if (err instanceof SendFailure) return err;
  const e = (err ?? {}) as { responseCode?: unknown; response?: unknown; code?: unknown; message?: unknown };
  const code = typeof e.responseCode === "number" && e.responseCode >= 100 && e.responseCode <= 999 ? e.responseCode : replyCode(e.response);
  const detail = typeof e.response === "string" && e.response ? e.response : typeof e.message === "string" ? e.message : String(err);
  if (code !== undefined && code >= 500 && code < 600) return new SendFailure(true, code, redact(`permanent failure: ${detail}`));
  if (code !== undefined && code >= 400 && code < 500) return new SendFailure(false, code, redact(`temporary failure: ${detail}`));
  const kind = typeof e.code === "string" && /^E[A-Z_]+$/.test(e.code) ? `${e.code} ` : "";
  return new SendFailure(false, undefined, redact(`temporary failure: ${kind}${detail}`));
}
