// What an event means to the notification service: the mail it asks for (a
// Notice), the address it tells us about (a RecipientChange), or a user to
// forget (an Erasure). Pure: no I/O.
// A message that cannot be decoded, or whose event this service does not know,
// is a PoisonMessage (dead-lettered at once; the consumer carries on).
// Two events carry a secret, the single-use token of a verification or reset
// link: it goes into the Notice's data (the mail's link and text) and nowhere
// else; no error text here names it.
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EnvelopeSchema, type Envelope, type OrderCreated } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { PoisonMessage, type BusMessage } from "../../platform/bus/bus.js";
import { maskEmail } from "../../platform/logger.js";
import { UUID_RE } from "../../platform/validate.js";
import type { CATEGORIES, KINDS } from "./migrations.js";
import type { TemplateData } from "./templates/source.js";

export type Kind = (typeof KINDS)[number];
export type Category = (typeof CATEGORIES)[number];

/** A mail an event asks for. */
export interface Notice {
  kind: Kind;
  category: Category;
  userId: string;
  /** The address the event names; undefined: the one known for userId (notify.recipients). */
  to?: string;
  data: TemplateData;
}

/** An address an event carries for a user (kept in notify.recipients). */
export interface RecipientChange {
  userId: string;
  email: string;
  occurredAt: Date;
}

/** A deleted account: forget the user's address (notify.recipients, the delivery log). */
export interface Erasure {
  userId: string;
  occurredAt: Date;
}

/** A product's available stock fell to its threshold (catalogue): logged for the operators, no mail yet. */
export interface StockAlert {
  productId: string;
  sku: string;
  available: number;
  threshold: number;
}

export interface DecodedEvent {
  envelope: Envelope;
  stockLow?: StockAlert;
  notice?: Notice;
  recipient?: RecipientChange;
  erasure?: Erasure;
}

/** Longest value of an event put into a mail (a user agent, a product name). */
const VALUE_MAX = 200;
const EVENT_ID_MAX = 100;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;
// eslint-disable-next-line no-control-regex
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const poison = (why: string): never => {
  throw new PoisonMessage(why);
};

/** Event text as a mail shows it: one line, bounded. */
const shown = (s: string) => {
  const line = s.replace(CONTROL, " ").trim();
  return line.length > VALUE_MAX ? `${line.slice(0, VALUE_MAX - 1)}…` : line;
};

const userIdOf = (id: string): string => (UUID_RE.test(id) ? id.toLowerCase() : poison("event has no valid user_id"));

/** An address as events carry it (normalised by the auth service): only its shape is checked here. */
const addressOf = (email: string, field: string): string =>
  email.length >= 3 && email.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(email) && !HAS_CONTROL.test(email)
    ? email
    : poison(`event has no valid ${field}`);

/** A link token as the auth service issues it: 32 random bytes, base64url without padding. */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const tokenOf = (token: string): string => (TOKEN_RE.test(token) ? token : poison("event has no valid token"));

/** Where the account pages are (NOTIFY_ACCOUNT_URL, index.ts): links are `${base}/<page>#token=<token>`. */
export const DEFAULT_ACCOUNT_URL = "http://localhost:8080/account";

/**
 * The link of a mailed token. The token is in the fragment, which a browser never sends to a
 * server (nor to its access log). The base is a checked http(s) URL with no query or fragment
 * (index.ts), the page a fixed path, the token base64url: nothing here needs encoding.
 */
const tokenLink = (accountUrl: string, page: "verify-email" | "reset-password", token: string) =>
  `${accountUrl.replace(/\/+$/, "")}/${page}#token=${token}`;

const VERIFY_PURPOSES = ["verify", "change_email"] as const;

/** The second-factor changes, each with the subject and the sentence of its mail. */
const SECOND_FACTOR_CHANGES: Readonly<Record<string, { title: string; detail: string }>> = {
  totp_enabled: {
    title: "Two-step verification was turned on for your Acme account",
    detail: "two-step verification was turned on for your Acme account: signing in now also asks for a code from your authenticator app.",
  },
  totp_disabled: {
    title: "Two-step verification was turned off for your Acme account",
    detail: "two-step verification was turned off for your Acme account: signing in now asks for your password only.",
  },
  recovery_codes_regenerated: {
    title: "New recovery codes were created for your Acme account",
    detail: "new recovery codes were created for the two-step verification of your Acme account. The codes you had before no longer work.",
  },
  reset_by_admin: {
    title: "An administrator reset two-step verification on your Acme account",
    detail: "an Acme administrator reset the two-step verification of your Acme account: it is off until you turn it on again.",
  },
};

/** "2025-03-01 14:05 UTC" */
export const when = (d: Date) => `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
const timeOf = (t: Timestamp | undefined, fallback: Date) => (t ? timestampDate(t) : fallback);

/**
 * What the confirmation says of an order's lines: one line's product, units and
 * unit price; several lines as "Desk lamp (2), Pen (5)", their units together;
 * the total with its currency. An OrderCreated from before lines: its own fields.
 */
function orderLines(o: OrderCreated): { product: string; quantity: string; unitPrice: string; total: string } {
  if (!o.lines.length) return { product: shown(o.product), quantity: String(o.quantity), unitPrice: money(o.unitPriceCents), total: money(o.totalCents) };
  const cur = (m: { amountMinor: bigint; currency: string } | undefined) => (m ? `${money(m.amountMinor)} ${shown(m.currency)}`.trim() : "");
  const one = o.lines.length === 1 ? o.lines[0] : undefined;
  return {
    product: one ? shown(one.name) : o.lines.map((l) => `${shown(l.name)} (${l.quantity})`).join(", "),
    quantity: String(o.lines.reduce((n, l) => n + l.quantity, 0)),
    unitPrice: one ? cur(one.unitPrice) : "see the products above",
    total: cur(o.total),
  };
}

/** 1999n -> "19.99" */
export function money(cents: bigint): string {
  const sign = cents < 0n ? "-" : "";
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
}

const STATUS_WORD: Readonly<Record<number, string>> = {
  [OrderStatus.PENDING]: "pending",
  [OrderStatus.CONFIRMED]: "confirmed",
  [OrderStatus.SHIPPED]: "shipped",
  [OrderStatus.CANCELLED]: "cancelled",
};
const statusWord = (s: OrderStatus) => STATUS_WORD[s] ?? "updated";
const orderIdOf = (id: string) => (UUID_RE.test(id) ? id.toLowerCase() : poison("event has no valid order_id"));
const orderData = (orderId: string) => ({ orderId, shortId: orderId.slice(0, 8) });

/** The envelope of a bus message, or PoisonMessage. */
export function decodeEnvelope(message: BusMessage): Envelope {
  if (!message.id || message.id.length > EVENT_ID_MAX) poison("message has no valid id");
  try {
    return fromBinary(EnvelopeSchema, message.body);
  } catch {
    return poison("body is not an acme.events.v1.Envelope");
  }
}

/**
 * What the event of a message means here; PoisonMessage when it cannot be read or is not known.
 * accountUrl: the base of the links in mails (NOTIFY_ACCOUNT_URL, checked by index.ts).
 */
export function decodeEvent(message: BusMessage, accountUrl: string = DEFAULT_ACCOUNT_URL): DecodedEvent {
  const envelope = decodeEnvelope(message);
  const at = timeOf(envelope.occurredAt, new Date());
  const e = envelope.event;
  switch (e.case) {
    case "userRegistered": {
      const userId = userIdOf(e.value.userId);
      const email = addressOf(e.value.email, "email");
      return {
        envelope,
        recipient: { userId, email, occurredAt: at },
        notice: { kind: "welcome", category: "account", userId, to: email, data: { email } },
      };
    }
    case "emailChanged": {
      const userId = userIdOf(e.value.userId);
      const newEmail = addressOf(e.value.newEmail, "new_email");
      const oldEmail = addressOf(e.value.oldEmail, "old_email");
      return {
        envelope,
        recipient: { userId, email: newEmail, occurredAt: at },
        // To the previous address: its owner learns of a change they may not have made.
        notice: { kind: "email_changed", category: "security", userId, to: oldEmail, data: { newEmail: maskEmail(newEmail), when: when(at) } },
      };
    }
    case "passwordChanged": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      // "reset": with a mailed token, and every session was signed out. "change" (by the owner), ""
      // (producers before the field) and any value added later: the notice of a changed password
      // (a security notice is never dropped for a word it does not know).
      const kind = e.value.via === "reset" ? "password_reset" : "password_changed";
      return { envelope, notice: { kind, category: "security", userId, to, data: { when: when(at) } } };
    }
    case "emailVerificationRequested": {
      const userId = userIdOf(e.value.userId);
      // The account's address ("verify"), or the new one of a change ("change_email"). No address is
      // kept from it: a change is not made until it is verified (EmailChanged then carries it).
      const to = addressOf(e.value.email, "email");
      const token = tokenOf(e.value.token);
      const purpose = (VERIFY_PURPOSES as readonly string[]).includes(e.value.purpose) ? e.value.purpose : poison("event has no valid purpose");
      const data = {
        email: to,
        change: purpose === "change_email" ? "yes" : "",
        link: tokenLink(accountUrl, "verify-email", token),
        token,
        expires: e.value.expiresAt ? when(timestampDate(e.value.expiresAt)) : "",
      };
      return { envelope, notice: { kind: "verify_email", category: "security", userId, to, data } };
    }
    case "signupAttempted": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      return { envelope, notice: { kind: "signup_attempt", category: "security", userId, to, data: { email: to, when: when(at) } } };
    }
    case "passwordResetRequested": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      const token = tokenOf(e.value.token);
      const data = {
        link: tokenLink(accountUrl, "reset-password", token),
        token,
        expires: e.value.expiresAt ? when(timestampDate(e.value.expiresAt)) : "",
        when: when(at),
      };
      return { envelope, notice: { kind: "password_reset_request", category: "security", userId, to, data } };
    }
    case "secondFactorChanged": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      const change = Object.hasOwn(SECOND_FACTOR_CHANGES, e.value.change) ? SECOND_FACTOR_CHANGES[e.value.change] : poison("event has no valid change");
      return { envelope, notice: { kind: "second_factor_changed", category: "security", userId, to, data: { ...change, when: when(at) } } };
    }
    case "loginFromNewDevice": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      const data = { when: when(at), ip: shown(e.value.ip) || "unknown", userAgent: shown(e.value.userAgent) || "unknown" };
      return { envelope, notice: { kind: "new_device_login", category: "security", userId, to, data } };
    }
    case "accountLocked": {
      const userId = userIdOf(e.value.userId);
      const to = addressOf(e.value.email, "email");
      return { envelope, notice: { kind: "account_locked", category: "security", userId, to, data: { until: when(timeOf(e.value.lockedUntil, at)) } } };
    }
    case "sessionRevoked":
      // The user ended it, or a password change or an admin did (those have their own notices).
      userIdOf(e.value.userId);
      return { envelope };
    case "accountDeleted":
      // No mail (there is nobody to write to any more): the consumer erases the address.
      return { envelope, erasure: { userId: userIdOf(e.value.userId), occurredAt: at } };
    case "orderCreated": {
      const o = e.value;
      const data = { ...orderData(orderIdOf(o.orderId)), ...orderLines(o) };
      return { envelope, notice: { kind: "order_confirmation", category: "orders", userId: userIdOf(o.userId), data } };
    }
    case "orderStatusChanged": {
      const o = e.value;
      const userId = userIdOf(o.userId);
      const orderId = orderIdOf(o.orderId);
      // A cancellation has its own event (OrderCancelled, with the reason): one mail for it, not two.
      if (o.toStatus === OrderStatus.CANCELLED) return { envelope };
      const data = { ...orderData(orderId), status: statusWord(o.toStatus), previous: statusWord(o.fromStatus), reason: "" };
      return { envelope, notice: { kind: "order_status", category: "orders", userId, data } };
    }
    case "orderCancelled": {
      const o = e.value;
      const data = { ...orderData(orderIdOf(o.orderId)), status: "cancelled", previous: statusWord(o.fromStatus), reason: shown(o.reason) };
      return { envelope, notice: { kind: "order_status", category: "orders", userId: userIdOf(o.userId), data } };
    }
    case "productCreated":
    case "stockChanged":
      // The catalogue's news: nothing to mail about (yet); consumed so that its outbox drains.
      return { envelope };
    case "stockLow": {
      const s = e.value;
      if (!UUID_RE.test(s.productId)) poison("event has no valid product_id");
      return { envelope, stockLow: { productId: s.productId.toLowerCase(), sku: shown(s.sku), available: s.available, threshold: s.lowStockThreshold } };
    }
    default:
      return poison(`unknown event type ${JSON.stringify(message.type.slice(0, 100))}`);
  }
}
