// An order's id is derived from its owner and the client's request id, so a
// retried CreateOrder (a timeout, a crash between the catalogue's Reserve and
// our insert) asks the catalogue for the same order id again, and Reserve,
// idempotent by order id, returns the reservation made the first time instead
// of reserving twice.
import { createHash } from "node:crypto";

/**
 * UUID of (user id, request id): the first 16 bytes of SHA-256 over both
 * (NUL-separated, the user id lower-cased), with the version bits set to 8
 * (RFC 9562 "custom", the name-based SHA-256 layout of its appendix B.2) and
 * the RFC variant bits.
 */
export function orderIdFor(userId: string, requestId: string): string {
  const b = createHash("sha256").update("acme.order.v1\0").update(userId.toLowerCase()).update("\0").update(requestId, "utf8").digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
