// UserInternalService: called by other services with a service token.
import type { ServiceImpl } from "@connectrpc/connect";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { invalidArgument, type FieldViolation } from "../../platform/errors.js";
import { toUser } from "./convert.js";
import type { UserStore } from "./store.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function internalHandlers(store: UserStore): Partial<ServiceImpl<typeof UserInternalService>> {
  return {
    async createProfile(req) {
      const bad: FieldViolation[] = [];
      if (!UUID.test(req.userId)) bad.push({ field: "userId", description: "must be a UUID" });
      if (!req.email) bad.push({ field: "email", description: "is required" });
      if (req.role && req.role !== "user" && req.role !== "admin") bad.push({ field: "role", description: 'must be "user" or "admin"' });
      if (bad.length) throw invalidArgument(bad);
      const profile = await store.createProfile({
        id: req.userId,
        email: req.email,
        name: req.name,
        role: (req.role || "user") as "user" | "admin",
      });
      return { user: toUser(profile) };
    },
    async checkUser(req) {
      if (!UUID.test(req.userId)) return { exists: false, active: false };
      const p = await store.get(req.userId);
      if (!p) return { exists: false, active: false };
      return { exists: true, active: p.active, user: toUser(p) };
    },
  };
}
