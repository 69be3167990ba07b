// NotificationService. The auth interceptor has already checked the token and
// the contract's roles (ListDeliveries and GetDelivery are admin RPCs, refused
// with PERMISSION_DENIED before they get here); the "My" RPCs act on the
// caller only, so there is nobody else's data to refuse.
import type { ServiceImpl } from "@connectrpc/connect";
import { DeliveryStatus, DeliveryStatusSchema, NotificationService } from "../../gen/acme/notification/v1/notification_pb.js";
import { requireUser } from "../../platform/auth/principal.js";
import { notFound } from "../../platform/errors.js";
import { nextPage, pageSize, type PageTokens } from "../../platform/pagination.js";
import { badField, updatePaths, Validator } from "../../platform/validate.js";
import { statusOf, toAttempt, toDelivery, toNotification, toPreferences } from "./convert.js";
import type { NotificationStore, PreferenceValues } from "./store.js";

/** GetDelivery shows at most this many attempts (the newest). */
export const ATTEMPTS_SHOWN = 200;

/** Every field of acme.notification.v1.Preferences; all may be named in a mask. */
const PREFERENCE_FIELDS = ["security", "account", "orders"] as const;

export interface NotificationHandlerDeps {
  store: NotificationStore;
  pageTokens: PageTokens;
}

export function notificationHandlers(deps: NotificationHandlerDeps): Partial<ServiceImpl<typeof NotificationService>> {
  const { store, pageTokens } = deps;
  const cursorOf = (r: { cursor_ts: string; id: string }) => ({ ts: r.cursor_ts, id: r.id });

  return {
    async listMyNotifications(req, ctx) {
      const me = requireUser(ctx);
      const size = pageSize(req.pageSize);
      // A token is valid only for the caller it was issued to.
      const scope = `notifications:mine:${me.userId.toLowerCase()}`;
      const after = pageTokens.decode(req.pageToken, scope);
      const rows = await store.list({ userId: me.userId, after, limit: size + 1 });
      const page = nextPage(rows, size, cursorOf, (c) => pageTokens.encode(c, scope));
      return { notifications: page.items.map(toNotification), nextPageToken: page.nextPageToken };
    },

    async getMyPreferences(_req, ctx) {
      const me = requireUser(ctx);
      return { preferences: toPreferences(await store.preferences(store.db, me.userId)) };
    },

    async updateMyPreferences(req, ctx) {
      const me = requireUser(ctx);
      const p = req.preferences ?? badField("preferences", "is required");
      const paths = updatePaths(req.updateMask, {
        updatable: PREFERENCE_FIELDS,
        known: PREFERENCE_FIELDS,
        populated: PREFERENCE_FIELDS.filter((f) => p[f] !== undefined),
      });
      // A path named in the mask but unset in the message means false (AIP-134): for security, refused too.
      if (paths.includes("security") && p.security !== true) {
        badField("preferences.security", "cannot be turned off: security notices are always sent");
      }
      const change: Partial<PreferenceValues> = {};
      if (paths.includes("account")) change.account = p.account ?? false;
      if (paths.includes("orders")) change.orders = p.orders ?? false;
      return { preferences: toPreferences(await store.updatePreferences(me.userId, change)) };
    },

    async listDeliveries(req) {
      // Admin only (contract roles).
      const v = new Validator();
      v.enumValue("status", req.status, DeliveryStatusSchema, { allowUnspecified: true });
      v.uuid("userId", req.userId, { optional: true });
      v.done();
      const size = pageSize(req.pageSize);
      const status = req.status === DeliveryStatus.UNSPECIFIED ? undefined : statusOf(req.status);
      const userId = req.userId ? req.userId.toLowerCase() : undefined;
      // A token is valid only for the filters it was issued for.
      const scope = `deliveries:${userId ?? "*"}:${status ?? "*"}`;
      const after = pageTokens.decode(req.pageToken, scope);
      const rows = await store.list({ userId, status, after, limit: size + 1 });
      const page = nextPage(rows, size, cursorOf, (c) => pageTokens.encode(c, scope));
      return { deliveries: page.items.map(toDelivery), nextPageToken: page.nextPageToken };
    },

    async getDelivery(req) {
      // Admin only (contract roles).
      new Validator().uuid("id", req.id).done();
      const row = await store.delivery(store.db, req.id.toLowerCase());
      if (!row) throw notFound("delivery");
      const attempts = await store.attempts(row.id, ATTEMPTS_SHOWN);
      return { delivery: toDelivery(row), attempts: attempts.map(toAttempt) };
    },
  };
}
