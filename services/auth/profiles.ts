// The user service as the auth service sees it: create a profile at
// registration, check active/role at login and refresh. Calls carry the auth
// service's own service token and a deadline.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { UserInternalService, User } from "../../gen/acme/user/v1/user_pb.js";
import { alreadyExists, unavailable } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";

export interface ProfileCheck {
  exists: boolean;
  active: boolean;
  user?: User;
}

export interface Profiles {
  create(p: { userId: string; email: string; name: string; role: "user" | "admin" }): Promise<User>;
  check(userId: string): Promise<ProfileCheck>;
}

const UNAVAILABLE_CODES = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);

/** A client-safe error for a failed call to the user service (details go to the log). */
export function upstreamError(log: Logger, rpc: string, err: unknown): ConnectError {
  const code = err instanceof ConnectError ? err.code : Code.Unknown;
  log.warn("user service call failed", { rpc, code: Code[code] });
  if (code === Code.AlreadyExists) return alreadyExists("email already registered");
  if (UNAVAILABLE_CODES.has(code)) return unavailable("user service unavailable, try again");
  return new ConnectError("user service call failed", Code.Internal);
}

export function userServiceProfiles(client: Client<typeof UserInternalService>, log: Logger, timeoutMs = 3000): Profiles {
  return {
    async create(p) {
      // CreateProfile is idempotent on user_id: one retry after a lost answer is safe, and
      // spares the caller a failed registration (and a profile left without its account).
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await client.createProfile({ userId: p.userId, email: p.email, name: p.name, role: p.role }, { timeoutMs });
          if (!r.user) throw new ConnectError("CreateProfile returned no user", Code.Internal);
          return r.user;
        } catch (err) {
          const code = err instanceof ConnectError ? err.code : Code.Unknown;
          if (attempt < 2 && (code === Code.Unavailable || code === Code.DeadlineExceeded)) continue;
          throw upstreamError(log, "CreateProfile", err);
        }
      }
    },
    async check(userId) {
      try {
        const r = await client.checkUser({ userId }, { timeoutMs });
        return { exists: r.exists, active: r.active, user: r.user };
      } catch (err) {
        throw upstreamError(log, "CheckUser", err);
      }
    },
  };
}
