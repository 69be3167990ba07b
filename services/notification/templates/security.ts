// Security notices (category "security", always sent): a sign-in from a new
// device, a changed password, a paused sign-in, a changed address.
import { htmlMail, textMail } from "./layout.js";
import type { TemplateSource } from "./source.js";

const notYou = "If this was not you, reset your password at once and contact support.";

export const newDeviceLogin: TemplateSource = {
  subject: "New sign-in to your Acme account",
  text: textMail(`
Hello,

your Acme account was just signed in to from a device we have not seen before.

When:   {{when}}
From:   {{ip}}
Device: {{userAgent}}

If this was you, there is nothing to do. ${notYou}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>your Acme account was just signed in to from a device we have not seen before.</p>
<table role="presentation" cellpadding="4" cellspacing="0" style="font-size:14px">
<tr><td style="color:#71717a">When</td><td>{{when}}</td></tr>
<tr><td style="color:#71717a">From</td><td>{{ip}}</td></tr>
<tr><td style="color:#71717a">Device</td><td>{{userAgent}}</td></tr>
</table>
<p>If this was you, there is nothing to do. ${notYou}</p>
`),
};

export const passwordChanged: TemplateSource = {
  subject: "Your Acme password was changed",
  text: textMail(`
Hello,

the password of your Acme account was changed on {{when}}. Your other sessions were signed out.

${notYou}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>the password of your Acme account was changed on {{when}}. Your other sessions were signed out.</p>
<p>${notYou}</p>
`),
};

export const accountLocked: TemplateSource = {
  subject: "Sign-in to your Acme account is paused",
  text: textMail(`
Hello,

after several failed attempts to sign in, sign-in to your Acme account is paused until {{until}}.

If these attempts were not yours, someone may be guessing your password: choose a new one once
sign-in is possible again.
`),
  html: htmlMail(`
<p>Hello,</p>
<p>after several failed attempts to sign in, sign-in to your Acme account is paused until <strong>{{until}}</strong>.</p>
<p>If these attempts were not yours, someone may be guessing your password: choose a new one once sign-in is possible again.</p>
`),
};

export const emailChanged: TemplateSource = {
  subject: "The sign-in address of your Acme account was changed",
  text: textMail(`
Hello,

on {{when}} the sign-in address of your Acme account was changed from this address to {{newEmail}}.
Mail about the account now goes there.

${notYou}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>on {{when}} the sign-in address of your Acme account was changed from this address to <strong>{{newEmail}}</strong>. Mail about the account now goes there.</p>
<p>${notYou}</p>
`),
};
