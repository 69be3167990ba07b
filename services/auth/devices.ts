// Devices an account has signed in from, for LoginFromNewDevice. The API has
// no device id, so a device is what every login records: its User-Agent
// header (the client address is left out on purpose: it changes with every
// network a phone joins, and a notice per Wi-Fi would teach owners to ignore
// them). device_id = the first 32 hex digits of SHA-256(user agent), the same
// in SQL (migration 007's backfill) and here. The account's devices are kept
// in auth.known_devices for as long as the account exists (session cleanup
// does not forget them); a login whose device is not there is from a new
// device, and the insert that adds it decides, so concurrent logins from one
// new device tell it once. The account's first device (its first login:
// registration opens no session) is not "new": no notice for it.
import { createHash } from "node:crypto";
import Bowser from "bowser";
import { sql, type Expression, type RawBuilder } from "kysely";

/** Opaque, stable id of the device a login came from (not a secret: a hash of its user agent). */
export function deviceId(userAgent: string): string {
  return createHash("sha256").update(userAgent, "utf8").digest("hex").slice(0, 32);
}

/** deviceId() in SQL, of a text column or value. */
export function deviceIdSql(userAgent: Expression<string>): RawBuilder<string> {
  return sql<string>`left(encode(sha256(convert_to(${userAgent}, 'UTF8')), 'hex'), 32)`;
}

/** Longest device name shown (ListSessions). */
const DEVICE_NAME_MAX = 80;

/**
 * A readable name of the device of a user agent, for ListSessions: "Firefox 128
 * on Linux", "Safari 17 on iOS", "grpcurl 1.9"; a program bowser does not know
 * ("curl/8.5.0") is named by its product token. "" for an empty user agent.
 */
export function deviceName(userAgent: string): string {
  if (!userAgent) return "";
  const p = Bowser.parse(userAgent.slice(0, 512));
  // Major versions ("0.9" keeps its minor): enough to tell devices apart, stable across updates.
  const major = (v?: string) => (v ? v.split(".").slice(0, v.startsWith("0.") ? 2 : 1).join(".") : "");
  const browser = [p.browser.name, major(p.browser.version)].filter(Boolean).join(" ");
  const os = p.os.name ? [p.os.name, p.os.versionName ?? major(p.os.version)].filter(Boolean).join(" ") : "";
  const product = /^([A-Za-z][\w.-]*)\/(\d+(?:\.\d+)?)/.exec(userAgent);
  const name = browser ? (os ? `${browser} on ${os}` : browser) : product ? `${product[1]} ${product[2]}` : "";
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, DEVICE_NAME_MAX);
}
