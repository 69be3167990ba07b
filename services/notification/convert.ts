// Row <-> message conversions for the notification service.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AttemptOutcome, Category, DeliveryAttemptSchema, DeliverySchema, DeliveryStatus, NotificationKind, NotificationSchema, PreferencesSchema,
  type Delivery, type DeliveryAttempt, type Notification, type Preferences,
} from "../../gen/acme/notification/v1/notification_pb.js";
import type { Category as CategoryName, Kind } from "./notices.js";
import type { AttemptRow, DeliveryRow, Outcome, PreferenceValues, Status } from "./store.js";

const KIND: Record<Kind, NotificationKind> = {
  welcome: NotificationKind.WELCOME,
  new_device_login: NotificationKind.NEW_DEVICE_LOGIN,
  password_changed: NotificationKind.PASSWORD_CHANGED,
  account_locked: NotificationKind.ACCOUNT_LOCKED,
  email_changed: NotificationKind.EMAIL_CHANGED,
  order_confirmation: NotificationKind.ORDER_CONFIRMATION,
  order_status: NotificationKind.ORDER_STATUS,
  verify_email: NotificationKind.VERIFY_EMAIL,
  signup_attempt: NotificationKind.SIGNUP_ATTEMPT,
  password_reset_request: NotificationKind.PASSWORD_RESET_REQUEST,
  password_reset: NotificationKind.PASSWORD_RESET,
  second_factor_changed: NotificationKind.SECOND_FACTOR_CHANGED,
};

const CATEGORY: Record<CategoryName, Category> = {
  security: Category.SECURITY,
  account: Category.ACCOUNT,
  orders: Category.ORDERS,
};

const STATUS: Record<Status, DeliveryStatus> = {
  QUEUED: DeliveryStatus.QUEUED,
  SENT: DeliveryStatus.SENT,
  RETRYING: DeliveryStatus.RETRYING,
  FAILED: DeliveryStatus.FAILED,
  SUPPRESSED: DeliveryStatus.SUPPRESSED,
};

const OUTCOME: Record<Outcome, AttemptOutcome> = {
  SENT: AttemptOutcome.SENT,
  TEMPORARY_FAILURE: AttemptOutcome.TEMPORARY_FAILURE,
  PERMANENT_FAILURE: AttemptOutcome.PERMANENT_FAILURE,
};

export const statusOf = (s: DeliveryStatus): Status | undefined => (Object.keys(STATUS) as Status[]).find((k) => STATUS[k] === s);

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

export function toNotification(r: DeliveryRow): Notification {
  return create(NotificationSchema, {
    id: r.id,
    kind: KIND[r.kind],
    category: CATEGORY[r.category],
    recipient: r.recipient,
    subject: r.subject,
    status: STATUS[r.status],
    createdAt: ts(r.created_at),
    sentAt: ts(r.sent_at),
  });
}

export function toDelivery(r: DeliveryRow): Delivery {
  return create(DeliverySchema, {
    id: r.id,
    eventId: r.event_id,
    kind: KIND[r.kind],
    category: CATEGORY[r.category],
    userId: r.user_id,
    recipient: r.recipient,
    subject: r.subject,
    status: STATUS[r.status],
    attemptCount: r.attempts,
    lastError: r.last_error ?? "",
    createdAt: ts(r.created_at),
    updatedAt: ts(r.updated_at),
    sentAt: ts(r.sent_at),
  });
}

export function toAttempt(r: AttemptRow): DeliveryAttempt {
  return create(DeliveryAttemptSchema, {
    number: r.number,
    attemptedAt: ts(r.attempted_at),
    durationMs: r.duration_ms,
    outcome: OUTCOME[r.outcome],
    smtpCode: r.smtp_code ?? 0,
    error: r.error ?? "",
    busAttempt: r.bus_attempt,
  });
}

/** Every field set: security is always on. */
export function toPreferences(p: PreferenceValues): Preferences {
  return create(PreferencesSchema, { security: true, account: p.account, orders: p.orders });
}
