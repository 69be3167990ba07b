// Order mails (category "orders"): the confirmation of a new order and its
// status changes (cancellation included).
import { htmlMail, textMail } from "./layout.js";
import type { TemplateSource } from "./source.js";

export const orderConfirmation: TemplateSource = {
  subject: "Order {{shortId}} received",
  text: textMail(`
Hello,

thank you for your order. We received it and will let you know when it moves on.

Order:      {{orderId}}
Product:    {{product}}
Quantity:   {{quantity}}
Unit price: {{unitPrice}}
Total:      {{total}}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>thank you for your order. We received it and will let you know when it moves on.</p>
<table role="presentation" cellpadding="4" cellspacing="0" style="font-size:14px">
<tr><td style="color:#71717a">Order</td><td>{{orderId}}</td></tr>
<tr><td style="color:#71717a">Product</td><td>{{product}}</td></tr>
<tr><td style="color:#71717a">Quantity</td><td>{{quantity}}</td></tr>
<tr><td style="color:#71717a">Unit price</td><td>{{unitPrice}}</td></tr>
<tr><td style="color:#71717a">Total</td><td><strong>{{total}}</strong></td></tr>
</table>
`),
};

export const orderStatus: TemplateSource = {
  subject: "Order {{shortId}} is {{status}}",
  text: textMail(`
Hello,

your order {{orderId}} is now {{status}} (it was {{previous}}).{{#if reason}} Reason: {{reason}}.{{/if}}
`),
  html: htmlMail(`
<p>Hello,</p>
<p>your order <strong>{{orderId}}</strong> is now <strong>{{status}}</strong> (it was {{previous}}).{{#if reason}} Reason: {{reason}}.{{/if}}</p>
`),
};
