// Email addresses, one documented way (docs/auth-policy.md):
//  - normalise: trim, Unicode NFKC (full-width and compatibility forms fold
//    to their plain letters), lowercase, NFKC again, and one trailing dot of
//    the domain removed ("Alice@Example.com." is "alice@example.com");
//  - refuse look-alikes: the local part, and each label of the domain, must
//    be written in one script, or in one of the combinations Unicode's
//    "highly restrictive" profile (UTS #39) allows (Latin with Han and Japanese
//    kana, with Han and Bopomofo, or with Han and Hangul). A Cyrillic "а" in a
//    Latin address is refused. Whole-script look-alikes (an address written
//    entirely in Cyrillic letters that resemble Latin ones) are not detected.
//  - validate (emailProblem, on the normal form): at most 254 characters, no
//    control or invisible characters, local@domain.tld, no mixed scripts.
// Login normalises the same way but never refuses: an address stored before
// this rule still signs in.

/** The one normal form of an email address (also applied to what Login receives). */
export function normalizeEmail(raw: string): string {
  let e = raw.trim().normalize("NFKC").toLowerCase().normalize("NFKC");
  if (e.includes("@") && e.endsWith(".")) e = e.slice(0, -1);
  return e;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const MAX_EMAIL_CHARS = 254;
/** Control, format (zero-width), private-use and unassigned characters, and lone surrogates. */
const INVISIBLE = /[\p{C}]/u;

/** Problems of a normalised email (normalizeEmail first): shape, length, invisible characters, mixed scripts. */
export function emailProblem(email: string): string | undefined {
  if (!email) return "is required";
  if (email.length > MAX_EMAIL_CHARS) return `must be at most ${MAX_EMAIL_CHARS} characters`;
  if (INVISIBLE.test(email)) return "must not contain control or invisible characters";
  if (!EMAIL.test(email)) return "must be an email address";
  return mixedScriptProblem(email);
}

const SCRIPTS = [
  "Latin",
  "Greek",
  "Cyrillic",
  "Armenian",
  "Hebrew",
  "Arabic",
  "Syriac",
  "Thaana",
  "Devanagari",
  "Bengali",
  "Gurmukhi",
  "Gujarati",
  "Oriya",
  "Tamil",
  "Telugu",
  "Kannada",
  "Malayalam",
  "Sinhala",
  "Thai",
  "Lao",
  "Tibetan",
  "Myanmar",
  "Georgian",
  "Hangul",
  "Ethiopic",
  "Cherokee",
  "Khmer",
  "Mongolian",
  "Hiragana",
  "Katakana",
  "Bopomofo",
  "Han",
] as const;
const SCRIPT_RE = SCRIPTS.map((s) => [s, new RegExp(`^\\p{Script=${s}}$`, "u")] as const);
const LETTER = /^[\p{L}\p{M}]$/u;
const COMMON = /^[\p{Script=Common}\p{Script=Inherited}]$/u;

/** Script combinations allowed besides a single script (UTS #39 "highly restrictive"). */
const ALLOWED_MIXES: ReadonlyArray<ReadonlySet<string>> = [
  new Set(["Latin", "Han", "Hiragana", "Katakana"]),
  new Set(["Latin", "Han", "Bopomofo"]),
  new Set(["Latin", "Han", "Hangul"]),
];

/** The scripts of the letters of `s` (digits, punctuation and combining marks count for none). */
export function scriptsOf(s: string): Set<string> {
  const out = new Set<string>();
  for (const ch of s) {
    if (!LETTER.test(ch) || COMMON.test(ch)) continue;
    out.add(SCRIPT_RE.find(([, re]) => re.test(ch))?.[0] ?? `other:${ch.codePointAt(0)!.toString(16)}`);
  }
  return out;
}

/** True when `s` is written in one script, or an allowed combination. */
export function singleScript(s: string): boolean {
  const scripts = scriptsOf(s);
  if (scripts.size <= 1) return true;
  return ALLOWED_MIXES.some((mix) => [...scripts].every((x) => mix.has(x)));
}

/** Why a (normalised) address mixes scripts, or undefined when it does not. */
export function mixedScriptProblem(email: string): string | undefined {
  const at = email.lastIndexOf("@");
  if (at < 0) return undefined;
  const parts = [email.slice(0, at), ...email.slice(at + 1).split(".")];
  return parts.every(singleScript) ? undefined : "must not mix writing systems (look-alike characters)";
}
