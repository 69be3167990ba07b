// The frame every HTML mail shares (a plain table layout with inline styles, as
// mail clients expect), and the footer of every text mail. Template source:
// `{{...}}` in a body is escaped by Handlebars when rendered (templates/index.ts).

/** An HTML mail: the body (Handlebars source) inside the shared frame. */
export function htmlMail(body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{subject}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f5;font-family:Helvetica,Arial,sans-serif;color:#18181b">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="background:#ffffff;border-radius:8px">
<tr><td style="padding:24px 32px;font-size:20px;font-weight:bold">Acme</td></tr>
<tr><td style="padding:0 32px 24px;font-size:15px;line-height:1.5">
${body.trim()}
</td></tr>
<tr><td style="padding:16px 32px;font-size:12px;color:#71717a;border-top:1px solid #e4e4e7">
This is an automatic message about your Acme account. Reply-to is not monitored.
</td></tr>
</table>
</td></tr></table>
</body>
</html>
`;
}

/** A text mail: the body (Handlebars source) and the shared footer. */
export function textMail(body: string): string {
  return `${body.trim()}

--
This is an automatic message about your Acme account. Reply-to is not monitored.
`;
}
