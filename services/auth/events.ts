// Events the auth service publishes (acme.events.v1), written to its outbox
// (auth.outbox, platform/outbox.ts) in the transaction of the change. Never a
// password, hash or session token in them: ids, addresses, the session a change
// is about. The one exception is the mailed single-use token of
// EmailVerificationRequested and PasswordResetRequested (account-tokens.ts):
// the event is how it reaches the mail; the auth service keeps only its hash.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AccountDeletedSchema,
  AccountLockedSchema,
  EmailChangedSchema,
  EmailVerificationRequestedSchema,
  LoginFromNewDeviceSchema,
  PasswordChangedSchema,
  SecondFactorChangedSchema,
  PasswordResetRequestedSchema,
  SessionRevokedSchema,
  SignupAttemptedSchema,
  UserRegisteredSchema,
} from "../../gen/acme/events/v1/events_pb.js";
import type { OutboxEvent } from "../../platform/outbox.js";
import { envelopeEvent } from "../envelope.js";
import { SCHEMA } from "./migrations.js";

/** Where the relay of this service's outbox reads and publishes (app/ starts it). */
export const OUTBOX = { schema: SCHEMA, exchange: "acme.user" } as const;

/** Routing keys on OUTBOX.exchange. */
export const ROUTING = {
  userRegistered: "user.registered",
  emailChanged: "user.email_changed",
  passwordChanged: "user.password_changed",
  loginNewDevice: "user.login_new_device",
  locked: "user.locked",
  sessionRevoked: "user.session_revoked",
  accountDeleted: "user.deleted",
  secondFactorChanged: "user.second_factor_changed",
  verificationRequested: "user.verification_requested",
  signupAttempted: "user.signup_attempted",
  passwordResetRequested: "user.password_reset_requested",
} as const;

/** An account was created by registration: its id and the address the welcome mail goes to. */
export function userRegistered(userId: string, email: string): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.userRegistered,
    aggregateId: userId,
    event: { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) },
  });
}

/** The account's sign-in address changed (a mail to both addresses). */
export function emailChanged(userId: string, oldEmail: string, newEmail: string, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.emailChanged,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "emailChanged", value: create(EmailChangedSchema, { userId, oldEmail, newEmail }) },
  });
}

/** The owner set a new password (not a rehash at a new cost): with the current one ("change") or a mailed token ("reset"). */
export function passwordChanged(userId: string, email: string, at: Date, via: "change" | "reset" = "change"): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.passwordChanged,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "passwordChanged", value: create(PasswordChangedSchema, { userId, email, via }) },
  });
}

/** A verification token to mail: to the account's address ("verify") or to the new one of a change ("change_email"). */
export function emailVerificationRequested(
  m: { userId: string; email: string; token: string; expiresAt: Date; purpose: "verify" | "change_email" },
  at: Date,
): OutboxEvent {
  const value = create(EmailVerificationRequestedSchema, { ...m, expiresAt: timestampFromDate(m.expiresAt) });
  return envelopeEvent({ routingKey: ROUTING.verificationRequested, aggregateId: m.userId, occurredAt: at, event: { case: "emailVerificationRequested", value } });
}

/** Someone registered the address of an existing account: its owner is told (the caller was not). */
export function signupAttempted(userId: string, email: string, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.signupAttempted,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "signupAttempted", value: create(SignupAttemptedSchema, { userId, email }) },
  });
}

/** A password reset token to mail to the account's address. */
export function passwordResetRequested(m: { userId: string; email: string; token: string; expiresAt: Date }, at: Date): OutboxEvent {
  const value = create(PasswordResetRequestedSchema, { ...m, expiresAt: timestampFromDate(m.expiresAt) });
  return envelopeEvent({ routingKey: ROUTING.passwordResetRequested, aggregateId: m.userId, occurredAt: at, event: { case: "passwordResetRequested", value } });
}

/** A login whose device (devices.ts) the account had not signed in from before. */
export function loginFromNewDevice(
  s: { userId: string; email: string; sessionId: string; deviceId: string; ip: string; userAgent: string },
  at: Date,
): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.loginNewDevice,
    aggregateId: s.userId,
    occurredAt: at,
    event: { case: "loginFromNewDevice", value: create(LoginFromNewDeviceSchema, s) },
  });
}

/** Sign-in to the account is refused (from one address) until `lockedUntil`, after repeated failures. */
export function accountLocked(userId: string, email: string, reason: string, lockedUntil: Date, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.locked,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "accountLocked", value: create(AccountLockedSchema, { userId, email, reason, lockedUntil: timestampFromDate(lockedUntil) }) },
  });
}

/** One session ended before its expiry; `reason` is the session's revoke_reason ("logout", "password_change", ...). */
export function sessionRevoked(userId: string, sessionId: string, reason: string, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.sessionRevoked,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "sessionRevoked", value: create(SessionRevokedSchema, { userId, sessionId, reason }) },
  });
}

/** The account was removed (credentials, sessions): consumers forget the person. Only the id, never the address. */
export function accountDeleted(userId: string, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.accountDeleted,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "accountDeleted", value: create(AccountDeletedSchema, { userId }) },
  });
}

/** What happened to an account's second factor (mfa/): the owner is told by mail. */
export type SecondFactorChange = "totp_enabled" | "totp_disabled" | "recovery_codes_regenerated" | "reset_by_admin";

/** The account's second factor changed: committed with the change (mfa/second-factor-store.ts). */
export function secondFactorChanged(userId: string, email: string, change: SecondFactorChange, at: Date): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.secondFactorChanged,
    aggregateId: userId,
    occurredAt: at,
    event: { case: "secondFactorChanged", value: create(SecondFactorChangedSchema, { userId, email, change }) },
  });
}
