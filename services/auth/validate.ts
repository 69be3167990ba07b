// Request validation for the auth API: auth's own rules (password, name) on
// top of the shared platform/validate.ts; each problem names its field
// (lowerCamelCase, as in the JSON form of the request). The email rule,
// normalisation and validation, is email.ts.
import { UUID_RE, Validator } from "../../platform/validate.js";
import { passwordProblem } from "./passwords.js";

export const UUID = UUID_RE;
export const MAX_NAME_CHARS = 100;

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
