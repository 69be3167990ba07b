// The mails, compiled once at load with a private Handlebars environment (no
// helpers registered; strict: a value the data lacks is an error, never an
// empty string). The sources are TypeScript strings, so the bundled build
// (scripts/start.mjs) reads no template file at run time.
//
//   const mail = render("welcome", { email: "ada@example.com" });  // { subject, text, html }
import Handlebars from "handlebars";
import type { Kind } from "../notices.js";
import { welcome } from "./account.js";
import { passwordReset, passwordResetRequest, secondFactorChanged, signupAttempt, verifyEmail } from "./account-security.js";
import { orderConfirmation, orderStatus } from "./orders.js";
import { accountLocked, emailChanged, newDeviceLogin, passwordChanged } from "./security.js";
import type { TemplateData, TemplateSource } from "./source.js";

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

const SOURCES: Readonly<Record<Kind, TemplateSource>> = {
  welcome,
  new_device_login: newDeviceLogin,
  password_changed: passwordChanged,
  account_locked: accountLocked,
  email_changed: emailChanged,
  order_confirmation: orderConfirmation,
  order_status: orderStatus,
  verify_email: verifyEmail,
  signup_attempt: signupAttempt,
  password_reset_request: passwordResetRequest,
  password_reset: passwordReset,
  second_factor_changed: secondFactorChanged,
};

const hbs = Handlebars.create();
type Compiled = (data: object) => string;

/** Parsed now (a syntax error stops the start), code generated on first use and kept. */
function compile(source: string, escape: boolean): Compiled {
  const ast = hbs.parse(source);
  return hbs.compile(ast, { strict: true, noEscape: !escape, knownHelpersOnly: true });
}

const COMPILED = Object.fromEntries(
  Object.entries(SOURCES).map(([kind, s]) => [kind, { subject: compile(s.subject, false), text: compile(s.text, false), html: compile(s.html, true) }]),
) as Record<Kind, { subject: Compiled; text: Compiled; html: Compiled }>;

// Control characters (line breaks included) never reach a header.
// eslint-disable-next-line no-control-regex
const oneLine = (s: string) => s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();

export function render(kind: Kind, data: TemplateData): RenderedMail {
  const t = COMPILED[kind];
  const subject = oneLine(t.subject(data));
  return { subject, text: t.text(data), html: t.html({ ...data, subject }) };
}
