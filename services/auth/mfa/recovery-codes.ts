// Recovery codes: ten single-use codes shown once when TOTP is turned on (or
// regenerated), for a lost authenticator. Ten characters from an alphabet
// without look-alikes (no 0/o, 1/l/i, u/v), shown as xxxxx-xxxxx: about 48
// bits each, and every use is throttled like a password. Only the SHA-256 of
// the normalised code is stored, so a leaked table does not hand out codes.
import { createHash, randomInt } from "node:crypto";

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = "23456789abcdefghjkmnpqrstwxyz";
const LENGTH = 10;
const SHAPE = new RegExp(`^[${ALPHABET}]{${LENGTH}}$`);

/** New codes, formatted for display ("k7m2p-x9a4c"). */
export function newRecoveryCodes(n = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: n }, () => {
    let s = "";
    for (let i = 0; i < LENGTH; i++) s += ALPHABET[randomInt(ALPHABET.length)];
    return `${s.slice(0, 5)}-${s.slice(5)}`;
  });
}

/** A code as typed, in its stored form: lowercase, without spaces or hyphens; undefined if it cannot be one of ours. */
export function normaliseRecoveryCode(raw: string): string | undefined {
  const s = raw.toLowerCase().replace(/[\s-]+/g, "");
  return SHAPE.test(s) ? s : undefined;
}

/** What is stored for a normalised code. */
export function hashRecoveryCode(normalised: string): Buffer {
  return createHash("sha256").update(normalised, "utf8").digest();
}
