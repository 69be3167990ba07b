// Request validation for the auth API: each problem names its field
// (lowerCamelCase, as in the JSON form of the request).
import { invalidArgument, type FieldViolation } from "../../platform/errors.js";
import { passwordProblem } from "./passwords.js";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const MAX_EMAIL_CHARS = 254;
export const MAX_NAME_CHARS = 100;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function emailProblem(email: string): string | undefined {
  if (!email) return "is required";
  if (email.length > MAX_EMAIL_CHARS) return `must be at most ${MAX_EMAIL_CHARS} characters`;
  if (!EMAIL.test(email)) return "must be an email address";
  return undefined;
}

/** Name after trimming: 1..100 characters (code points), no control characters. */
export function nameProblem(name: string): string | undefined {
  const n = [...name].length;
  if (n === 0) return "is required";
  if (n > MAX_NAME_CHARS) return `must be at most ${MAX_NAME_CHARS} characters`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return "must not contain control characters";
  return undefined;
}

/** Collect problems; throws INVALID_ARGUMENT with one violation per bad field. */
export function check(problems: Record<string, string | undefined>): void {
  const bad: FieldViolation[] = Object.entries(problems)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([field, description]) => ({ field, description }));
  if (bad.length) throw invalidArgument(bad);
}

export { passwordProblem };
