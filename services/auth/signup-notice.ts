// SignupAttempted: someone registered the address of an existing account, so
// its owner is mailed. At most once per account per 10 minutes, so that a
// stranger repeating Register cannot flood the owner's inbox. Decided by a
// KV key with that TTL, claimed with SET NX: atomic across instances, gone on
// its own, no table to scan (the audit log's register_existing rows would
// need an indexed scan per attempt and still race between instances).
// The event has a transaction of its own (the account did not change).
import type { KeyValueStore } from "../../platform/kv.js";
import type { Logger } from "../../platform/logger.js";
import type { Clock } from "./clock.js";
import { signupAttempted } from "./events.js";
import type { AuthStore } from "./store.js";

export const SIGNUP_NOTICE_INTERVAL_MS = 10 * 60_000;

export class SignupNotices {
  constructor(
    private readonly store: AuthStore,
    private readonly kv: KeyValueStore,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Tell the owner, unless they were told in the last 10 minutes. Never
   * throws: the caller's answer must not depend on it (nor reveal the account).
   */
  async attempted(account: { id: string; email: string }): Promise<void> {
    try {
      if (!(await this.kv.setNx(`auth:signup-notice:${account.id}`, "1", SIGNUP_NOTICE_INTERVAL_MS))) return;
      await this.store.recordEvent(signupAttempted(account.id, account.email, new Date(this.clock.now())));
    } catch (err) {
      this.log.error("SignupAttempted not recorded", { userId: account.id, err });
    }
  }
}
