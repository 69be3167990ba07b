// Request validation for the auth API: auth's own rules (email, password) on
// top of the shared platform/validate.ts; each problem names its field
// (lowerCamelCase, as in the JSON form of the request).
import { UUID_RE, Validator } from "../../platform/validate.js";
import { mixedScriptProblem, normalizeEmail } from "./email.js";
import { passwordProblem } from "./passwords.js";

export const UUID = UUID_RE;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const MAX_EMAIL_CHARS = 254;
export const MAX_NAME_CHARS = 100;

/** Control, format (zero-width), private-use and unassigned characters, and lone surrogates. */
const INVISIBLE = /[\p{C}]/u;

export { normalizeEmail };

/** Problems of a normalised email (normalizeEmail first): shape, length, invisible characters, mixed scripts. */
export function emailProblem(email: string): string | undefined {
  if (!email) return "is required";
  if (email.length > MAX_EMAIL_CHARS) return `must be at most ${MAX_EMAIL_CHARS} characters`;
  if (INVISIBLE.test(email)) return "must not contain control or invisible characters";
  if (!EMAIL.test(email)) return "must be an email address";
  return mixedScriptProblem(email);
}

/** Name: 1..100 characters (code points), not blank, no control characters (the user service's rule). */
export function nameProblem(name: string): string | undefined {
  return new Validator().text("name", name, { max: MAX_NAME_CHARS }).violations[0]?.description;
}

/** Collect problems; throws INVALID_ARGUMENT with one violation per bad field. */
export function check(problems: Record<string, string | undefined>): void {
  const v = new Validator();
  for (const [field, description] of Object.entries(problems)) if (description !== undefined) v.add(field, description);
  v.done();
}

export { passwordProblem };
