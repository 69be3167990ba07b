// The account lifecycle's mails (category "security", always sent): confirm an
// address, someone tried to sign up with yours, reset your password, your
// password was reset, your second factor changed.
// Two carry a single-use token: as a link ({{link}}: the account URL, a fixed
// page and the token in the fragment, built by notices.ts) and on its own line
// ("Or paste this code"), for those who use the API. Only the subject of a mail
// is kept (the delivery log): a token is never in a subject.
import { htmlMail, textMail } from "./layout.js";
import type { TemplateSource } from "./source.js";

const BUTTON = "display:inline-block;padding:10px 18px;background:#18181b;color:#ffffff;border-radius:6px;text-decoration:none;font-weight:bold";
const CODE = "font-family:Menlo,Consolas,monospace;font-size:14px;background:#f4f4f5;padding:2px 4px;word-break:break-all";

/** The link (a button, then in full for clients that show no button) and the code, in HTML. */
const htmlLink = (label: string) => `<p><a href="{{link}}" style="${BUTTON}">${label}</a></p>
<p style="font-size:13px;color:#52525b">Or open this link:<br><a href="{{link}}" style="word-break:break-all">{{link}}</a></p>
<p style="font-size:13px;color:#52525b">Or paste this code: <code style="${CODE}">{{token}}</code></p>`;

const validUntil = "{{#if expires}} before {{expires}}{{/if}}";

export const verifyEmail: TemplateSource = {
  subject: "Confirm your {{#if change}}new {{/if}}email address",
  text: textMail(`
Hello,

{{#if change}}you asked to make {{email}} the sign-in address of your Acme account. The change is made
once you confirm it; until then, mail about the account keeps going to your current address.{{else}}please confirm that {{email}} is the address of your Acme account.{{/if}}

To confirm it, open this link${validUntil}:

{{link}}

Or paste this code: {{token}}

The link works once. If you did not ask for this, ignore this mail: nothing changes.
`),
  html: htmlMail(`
<p>Hello,</p>
<p>{{#if change}}you asked to make <strong>{{email}}</strong> the sign-in address of your Acme account. The change is made once you confirm it; until then, mail about the account keeps going to your current address.{{else}}please confirm that <strong>{{email}}</strong> is the address of your Acme account.{{/if}}</p>
<p>To confirm it, open this link${validUntil}:</p>
${htmlLink("Confirm {{#if change}}new {{/if}}address")}
<p>The link works once. If you did not ask for this, ignore this mail: nothing changes.</p>
`),
};

export const signupAttempt: TemplateSource = {
  subject: "Someone tried to sign up with your address",
  text: textMail(`
Hello,

on {{when}} someone tried to create an Acme account with {{email}}. This address already has an
account, so no new one was made, and whoever tried was not told that it exists.

If it was you: you already have an account. Sign in with it; if you forgot your password, ask
for a password reset on the sign-in page.

If it was not you, there is nothing to do: your account is unchanged.
`),
  html: htmlMail(`
<p>Hello,</p>
<p>on {{when}} someone tried to create an Acme account with <strong>{{email}}</strong>. This address already has an account, so no new one was made, and whoever tried was not told that it exists.</p>
<p>If it was you: you already have an account. Sign in with it; if you forgot your password, ask for a password reset on the sign-in page.</p>
<p>If it was not you, there is nothing to do: your account is unchanged.</p>
`),
};

export const passwordResetRequest: TemplateSource = {
  subject: "Reset your Acme password",
  text: textMail(`
Hello,

on {{when}} a password reset was asked for your Acme account. To choose a new password, open this
link${validUntil}:

{{link}}

Or paste this code: {{token}}

The link works once. If you did not ask, ignore this mail: your password is unchanged.
`),
  html: htmlMail(`
<p>Hello,</p>
<p>on {{when}} a password reset was asked for your Acme account. To choose a new password, open this link${validUntil}:</p>
${htmlLink("Choose a new password")}
<p>The link works once. If you did not ask, ignore this mail: your password is unchanged.</p>
`),
};

const resetNotYou = "If this was not you, someone can read your mail: secure your mailbox, then reset your password again and contact support.";

export const passwordReset: TemplateSource = {
  subject: "Your Acme password was reset",
  text: textMail(`
Hello,

the password of your Acme account was reset on {{when}}, with a link sent to this address. Every
session was signed out: sign in again with the new password.

${resetNotYou}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>the password of your Acme account was reset on {{when}}, with a link sent to this address. Every session was signed out: sign in again with the new password.</p>
<p>${resetNotYou}</p>
`),
};

const notYou = "If this was not you, reset your password at once and contact support.";

/** One mail for every change: {{title}} and {{detail}} are fixed sentences per change (notices.ts). */
export const secondFactorChanged: TemplateSource = {
  subject: "{{title}}",
  text: textMail(`
Hello,

on {{when}} {{detail}}

${notYou}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>on {{when}} {{detail}}</p>
<p>${notYou}</p>
`),
};
