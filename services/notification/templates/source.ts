// The shape of a mail's templates: Handlebars source for the subject, the
// text part and the HTML part (compiled once, in templates/index.ts).
export interface TemplateSource {
  /** One line; rendered without HTML escaping. */
  readonly subject: string;
  /** text/plain; rendered without HTML escaping. */
  readonly text: string;
  /** text/html; every {{value}} is HTML-escaped. */
  readonly html: string;
}

/** What a template is rendered with: strings only (each event's fields, formatted by notices.ts). */
export type TemplateData = Readonly<Record<string, string>>;
