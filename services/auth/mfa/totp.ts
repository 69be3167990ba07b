// TOTP (RFC 6238) with otpauth: SHA-1, 6 digits, 30 s steps, the parameters
// every authenticator app supports. A code is accepted in the current step or
// one either side (clock drift); which step it matched is returned so the
// caller can refuse a step already used (the replay guard: spend() in
// second-factor-store.ts moves last_step only forwards, atomically).
import { randomBytes } from "node:crypto";
import { Secret, TOTP } from "otpauth";
import QRCode from "qrcode";

const ALGORITHM = "SHA1";
const DIGITS = 6;
const PERIOD_SECONDS = 30;
/** Steps either side of now a code may come from. */
const WINDOW = 1;
/** RFC 4226 recommends 160 bits for the shared secret. */
const SECRET_BYTES = 20;

/** A new random shared secret. */
export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

export const base32 = (secret: Uint8Array) => new Secret({ buffer: Uint8Array.from(secret).buffer }).base32;

/** The Key Uri Format (otpauth://totp/Issuer:label?...) authenticator apps import. */
export function otpauthUri(secret: Uint8Array, issuer: string, label: string): string {
  return totp(secret, issuer, label).toString();
}

/** The URI as a QR code, an SVG document. */
export function qrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
}

/** A code as the client typed it: exactly six digits once spaces are gone ("123 456"); else undefined. */
export function parseTotpCode(raw: string): string | undefined {
  const code = raw.replace(/\s+/g, "");
  return /^\d{6}$/.test(code) ? code : undefined;
}

/** The time step `code` (already parsed) belongs to, at `nowMs`, within the window; undefined when it matches none. */
export function matchingStep(secret: Uint8Array, code: string, nowMs: number): number | undefined {
  const delta = TOTP.validate({
    token: code,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD_SECONDS,
    timestamp: nowMs,
    window: WINDOW,
  });
  return delta === null ? undefined : stepAt(nowMs) + delta;
}

export const stepAt = (ms: number) => TOTP.counter({ period: PERIOD_SECONDS, timestamp: ms });

function totp(secret: Uint8Array, issuer: string, label: string): TOTP {
  return new TOTP({
    issuer,
    label,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD_SECONDS,
  });
}
