// Account mails (category "account"): welcome.
import { htmlMail, textMail } from "./layout.js";
import type { TemplateSource } from "./source.js";

export const welcome: TemplateSource = {
  subject: "Welcome to Acme",
  text: textMail(`
Hello,

your Acme account for {{email}} is ready. Sign in any time to place and follow your orders.

Welcome aboard,
the Acme team
`),
  html: htmlMail(`
<p>Hello,</p>
<p>your Acme account for <strong>{{email}}</strong> is ready. Sign in any time to place and follow your orders.</p>
<p>Welcome aboard,<br>the Acme team</p>
`),
};
