// UserService: profiles, roles, ownership. The auth interceptor has already
// checked the token and the contract's roles; handlers decide ownership.
// Anyone who may not see a user gets the same NOT_FOUND as for a missing one.
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { UserService, type User } from "../../gen/acme/user/v1/user_pb.js";
import { requireUser } from "../../platform/auth/principal.js";
import { requireOwner } from "../../platform/policy.js";
import { notFound } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import { nextPage, pageSize, type PageTokens } from "../../platform/pagination.js";
import { badField, updatePaths, Validator } from "../../platform/validate.js";
import { toUser } from "./convert.js";
import { downstreamError, type Downstream } from "./downstream.js";
import { NAME_MAX, ROLES, type Profile, type ProfilePatch, type Role, type UserStore } from "./store.js";

/** Every field of acme.user.v1.User (for "unknown" vs "cannot be updated" mask paths). */
const USER_FIELDS = ["id", "email", "name", "role", "active", "created_at", "updated_at"];

const PAGE_SCOPE = "users:list";

export interface UserHandlerDeps {
  store: UserStore;
  pageTokens: PageTokens;
  downstream: Downstream;
  log: Logger;
}

export function userHandlers(deps: UserHandlerDeps): Partial<ServiceImpl<typeof UserService>> {
  const { store, pageTokens, downstream, log } = deps;

  /** The profile the caller may see (the contract's owner rule), or NOT_FOUND (also when it exists but is not theirs). */
  const visible = async (ctx: HandlerContext, id: string): Promise<Profile> => {
    requireOwner(ctx, id);
    const p = await store.get(id);
    if (!p) throw notFound("user");
    return p;
  };

  const requireUserMessage = (user: User | undefined): User => user ?? badField("user", "is required");

  const revoke = async (userId: string, reason: string) => {
    try {
      await downstream.auth().revokeUserSessions({ userId, reason });
    } catch (err) {
      throw downstreamError(log, "auth.RevokeUserSessions", err);
    }
  };

  return {
    async getMe(_req, ctx) {
      const me = requireUser(ctx);
      const p = await store.get(me.userId);
      if (!p) throw notFound("user");
      return { user: toUser(p) };
    },

    async updateMe(req, ctx) {
      const me = requireUser(ctx);
      const user = requireUserMessage(req.user);
      const paths = updatePaths(req.updateMask, {
        updatable: ["name"] as const,
        known: USER_FIELDS,
        populated: user.name !== "" ? ["name"] : [],
      });
      const v = new Validator();
      if (paths.includes("name")) v.text("user.name", user.name, { max: NAME_MAX });
      v.done();
      const p = await store.update(me.userId, { name: user.name });
      if (!p) throw notFound("user");
      return { user: toUser(p) };
    },

    async getUser(req, ctx) {
      new Validator().uuid("id", req.id).done();
      return { user: toUser(await visible(ctx, req.id)) };
    },

    async listUsers(req) {
      const size = pageSize(req.pageSize);
      const after = pageTokens.decode(req.pageToken, PAGE_SCOPE);
      const rows = await store.list(after, size + 1);
      const page = nextPage(rows, size, (r) => ({ ts: r.cursor_ts, id: r.id }), (c) => pageTokens.encode(c, PAGE_SCOPE));
      return { users: page.items.map(toUser), nextPageToken: page.nextPageToken };
    },

    async updateUser(req) {
      // Admin only (contract roles); the interceptor has checked the token's role.
      const user = requireUserMessage(req.user);
      const v = new Validator().uuid("user.id", user.id);
      v.done();
      const populated: ("role" | "active")[] = [];
      if (user.role !== "") populated.push("role");
      // proto3 cannot tell active=false from unset: deactivating needs update_mask "active".
      if (user.active) populated.push("active");
      const paths = updatePaths(req.updateMask, { updatable: ["role", "active"] as const, known: USER_FIELDS, populated });
      if (paths.includes("role")) v.oneOf("user.role", user.role, ROLES);
      v.done();

      const before = await store.get(user.id);
      if (!before) throw notFound("user");
      const patch: ProfilePatch = {};
      if (paths.includes("role")) patch.role = user.role as Role;
      if (paths.includes("active")) patch.active = user.active;
      // Write first so a new login is already refused, then end every session
      // (idempotent: retrying the same update revokes again).
      const after = await store.update(user.id, patch);
      if (!after) throw notFound("user");
      if (paths.includes("active") && !after.active) await revoke(after.id, "deactivated");
      else if (before.role === "admin" && after.role !== "admin") await revoke(after.id, "role_changed");
      return { user: toUser(after) };
    },

    async deleteUser(req, ctx) {
      new Validator().uuid("id", req.id).done();
      const p = await visible(ctx, req.id);
      // Each step is idempotent, so a failed deletion can simply be retried
      // (by an admin once the user's own sessions are gone):
      // 1. deactivate: CheckUser now says inactive (no new orders, no login);
      await store.update(p.id, { active: false });
      // 2. remove the account in auth (credentials and every session);
      try {
        await downstream.auth().deleteAccount({ userId: p.id });
      } catch (err) {
        if (ConnectError.from(err).code !== Code.NotFound) throw downstreamError(log, "auth.DeleteAccount", err);
      }
      // 3. keep the orders, marked as belonging to a deleted user;
      try {
        await downstream.orders().markOwnerDeleted({ userId: p.id });
      } catch (err) {
        throw downstreamError(log, "order.MarkOwnerDeleted", err);
      }
      // 4. remove the profile.
      await store.delete(p.id);
      log.info("user deleted", { userId: p.id, byAdmin: p.id !== requireUser(ctx).userId });
      return {};
    },
  };
}
