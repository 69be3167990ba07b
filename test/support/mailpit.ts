// Mailpit for tests: a typed client of its HTTP API (what the notification
// service sent, and SMTP chaos to make it fail), and a Mailpit of a test's own
// (scripts/stack/mailpit.ts) in a temp dir on free ports. The stack's is at
// stack.mailpitUrl. Field names are the API's (Go's, capitalised), as in
// Mailpit v1.33.1's server/apiv1 and internal/storage.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mailpitUrls, startMailpit as startMailpitProcess } from "../../scripts/stack/mailpit.js";
import { freePort, type Managed } from "../../scripts/stack/process.js";

export interface MailAddress {
  Name: string;
  Address: string;
}

/** A message as listed (GET /api/v1/messages). */
export interface MessageSummary {
  /** Mailpit's id (for message(id)), not the Message-ID header. */
  ID: string;
  MessageID: string;
  Read: boolean;
  From: MailAddress | null;
  To: MailAddress[];
  Cc: MailAddress[];
  Bcc: MailAddress[];
  ReplyTo: MailAddress[];
  Subject: string;
  /** When Mailpit received it (RFC 3339). */
  Created: string;
  Tags: string[];
  Size: number;
  Attachments: number;
  /** The first characters of the text. */
  Snippet: string;
}

export interface Attachment {
  PartID: string;
  FileName: string;
  ContentType: string;
  ContentID: string;
  Size: number;
}

/** One message whole (GET /api/v1/message/{id}) with its headers (.../headers). */
export interface Message {
  ID: string;
  MessageID: string;
  From: MailAddress | null;
  To: MailAddress[];
  Cc: MailAddress[];
  Bcc: MailAddress[];
  ReplyTo: MailAddress[];
  ReturnPath: string;
  Subject: string;
  Date: string;
  Tags: string[];
  Text: string;
  HTML: string;
  Size: number;
  Inline: Attachment[];
  Attachments: Attachment[];
  /** Every header, by its name as sent (e.g. "Content-Type"), each value in order. */
  Headers: Record<string, string[]>;
}

/** One SMTP chaos trigger: answer ErrorCode (400-599) with Probability percent (0 = off). */
export interface ChaosTrigger {
  ErrorCode: number;
  Probability: number;
}

/** Where SMTP fails: MAIL FROM (Sender), each RCPT TO (Recipient), AUTH (Authentication: only with auth configured). */
export interface ChaosTriggers {
  Sender: ChaosTrigger;
  Recipient: ChaosTrigger;
  Authentication: ChaosTrigger;
}

/** A trigger that fires every time: e.g. chaos({ Recipient: always(451) }). */
export const always = (code: number): ChaosTrigger => ({ ErrorCode: code, Probability: 100 });

/** Go's nil slices arrive as null: the address lists and tags as empty lists instead. */
function lists<T extends object>(m: T): T {
  const o = m as Record<string, unknown>;
  for (const k of ["To", "Cc", "Bcc", "ReplyTo", "Tags", "Inline", "Attachments"]) if (k in o && o[k] === null) o[k] = [];
  return m;
}

export class Mailpit {
  /** url: the web UI and API, http://127.0.0.1:<port> (stack.mailpitUrl). */
  constructor(readonly url: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`mailpit: ${method} ${path}: ${res.status} ${text.trim()}`);
    return (res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as T;
  }

  /** Version, database and counters (GET /api/v1/info). */
  info(): Promise<{ Version: string; Database: string; Messages: number; Unread: number }> {
    return this.call("GET", "/api/v1/info");
  }

  /**
   * The messages, newest first (at most `limit`, default 500: Mailpit keeps the last 500).
   * `query`: Mailpit's search (e.g. "to:ada@example.com subject:welcome").
   */
  async messages(opts: { query?: string; limit?: number } = {}): Promise<MessageSummary[]> {
    const q = new URLSearchParams({ limit: String(opts.limit ?? 500) });
    if (opts.query) q.set("query", opts.query);
    const r = await this.call<{ messages: MessageSummary[] }>("GET", `/api/v1/${opts.query ? "search" : "messages"}?${q}`);
    return (r.messages ?? []).map(lists);
  }

  /** One message: its text and HTML bodies, attachments and headers ("latest": the newest). */
  async message(id: string): Promise<Message> {
    const [m, headers] = await Promise.all([
      this.call<Omit<Message, "Headers">>("GET", `/api/v1/message/${encodeURIComponent(id)}`),
      this.call<Record<string, string[]>>("GET", `/api/v1/message/${encodeURIComponent(id)}/headers`),
    ]);
    return lists({ ...m, Headers: headers });
  }

  /** The message as received (RFC 5322 source). */
  raw(id: string): Promise<string> {
    return this.call("GET", `/api/v1/message/${encodeURIComponent(id)}/raw`);
  }

  /** The first (newest) message that satisfies `predicate`, polling until timeoutMs. */
  async waitFor(predicate: (m: MessageSummary) => boolean, timeoutMs = 10_000): Promise<MessageSummary> {
    const until = Date.now() + timeoutMs;
    let seen: MessageSummary[] = [];
    for (;;) {
      seen = await this.messages();
      const found = seen.find(predicate);
      if (found) return found;
      if (Date.now() > until) {
        const list = seen.slice(0, 10).map((m) => `${m.To.map((a) => a.Address).join(",")}: ${m.Subject}`).join("; ");
        throw new Error(`mailpit: no matching message within ${timeoutMs} ms (${seen.length} there${list ? `: ${list}` : ""})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The messages sent to `address` (case-insensitive), newest first. */
  async to(address: string): Promise<MessageSummary[]> {
    const a = address.toLowerCase();
    return (await this.messages()).filter((m) => m.To.some((t) => t.Address.toLowerCase() === a));
  }

  /** Delete every message. */
  async deleteAll(): Promise<void> {
    await this.call("DELETE", "/api/v1/messages");
  }

  /**
   * Set the SMTP chaos triggers (Mailpit started with --enable-chaos): those not
   * given are off; "off" (or {}) turns every one off. Returns the triggers now in force.
   *   chaos({ Recipient: always(451) })   every RCPT TO answered 451 (a temporary failure)
   *   chaos({ Recipient: always(550) })   ... 550 (permanent)
   *   chaos("off")                        back to normal
   */
  chaos(triggers: Partial<ChaosTriggers> | "off"): Promise<ChaosTriggers> {
    return this.call("PUT", "/api/v1/chaos", triggers === "off" ? {} : triggers);
  }

  /** The triggers in force (GET /api/v1/chaos). */
  chaosState(): Promise<ChaosTriggers> {
    return this.call("GET", "/api/v1/chaos");
  }
}

/** A Mailpit of a test's own: its client, SMTP URL, and stop/start (an SMTP outage; messages kept). */
export interface OwnMailpit extends Mailpit {
  /** smtp://127.0.0.1:<port>: the notification service's SMTP_URL. */
  readonly smtpUrl: string;
  readonly smtpPort: number;
  stop(): Promise<void>;
  /** Start it again after stop(), on the same ports and database. */
  start(): Promise<void>;
  running(): boolean;
  /** Stop it and remove its database. */
  close(): Promise<void>;
}

/**
 * Start a Mailpit (the pinned one, `npm run tools`) in a temp dir on free loopback
 * ports, with chaos enabled. close() it in after().
 */
export async function startMailpit(): Promise<OwnMailpit> {
  const dir = mkdtempSync(join(tmpdir(), "acme-mailpit-"));
  const ports = { smtpPort: await freePort(), httpPort: await freePort() };
  const launch = () => startMailpitProcess({ dir, ...ports });
  let proc: Managed | undefined;
  try {
    proc = await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { smtpUrl, url } = mailpitUrls(ports);
  const client = new Mailpit(url);
  return Object.assign(client, {
    smtpUrl,
    smtpPort: ports.smtpPort,
    stop: async () => {
      await proc?.stop();
      proc = undefined;
    },
    start: async () => {
      proc ??= await launch();
    },
    running: () => proc?.running() ?? false,
    close: async () => {
      await proc?.stop();
      proc = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
