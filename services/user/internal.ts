// UserInternalService: called by other services with a service token.
import type { ServiceImpl } from "@connectrpc/connect";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { emailProblem } from "../../platform/email.js";
import { alreadyExists, PG_UNIQUE_VIOLATION, pgCode } from "../../platform/errors.js";
import { UUID_RE, Validator } from "../../platform/validate.js";
import { toUser } from "./convert.js";
import { NAME_MAX, ROLES, type Role, type UserStore } from "./store.js";

export function internalHandlers(store: UserStore): Partial<ServiceImpl<typeof UserInternalService>> {
  return {
    async createProfile(req) {
      const v = new Validator();
      v.uuid("userId", req.userId);
      // The one email rule (the auth service sends the normal form).
      const emailIssue = emailProblem(req.email);
      if (emailIssue) v.add("email", emailIssue);
      // The name may be empty at registration; UpdateMe requires one.
      v.text("name", req.name, { min: 0, max: NAME_MAX });
      if (req.role !== "") v.oneOf("role", req.role, ROLES);
      v.done();
      try {
        const profile = await store.createProfile({
          id: req.userId,
          email: req.email,
          name: req.name,
          role: (req.role || "user") as Role,
        });
        return { user: toUser(profile) };
      } catch (err) {
        // Another profile has this email (profiles_email is unique).
        if (pgCode(err) === PG_UNIQUE_VIOLATION) throw alreadyExists("email already registered");
        throw err;
      }
    },
    async checkUser(req) {
      if (!UUID_RE.test(req.userId)) return { exists: false, active: false };
      const p = await store.get(req.userId);
      if (!p) return { exists: false, active: false };
      return { exists: true, active: p.active, user: toUser(p) };
    },
  };
}
