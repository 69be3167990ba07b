// OrderService. The auth interceptor has already checked the token and the
// contract's roles; handlers decide ownership. An order the caller may not
// see is NOT_FOUND, exactly as a missing one.
import { Code, ConnectError, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { OrderService, OrderStatus, OrderStatusSchema, type Order } from "../../gen/acme/order/v1/order_pb.js";
import type { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { isCircuitOpen } from "../../platform/breaker.js";
import { isAdmin, requireUser } from "../../platform/auth/principal.js";
import { failedPrecondition, notFound, permissionDenied } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import { nextPage, pageSize, type PageTokens } from "../../platform/pagination.js";
import { badField, updatePaths, Validator } from "../../platform/validate.js";
import { statusOf, toOrder } from "./convert.js";
import { CANCEL_REASON } from "./events.js";
import type { OrderRow, OrderStore, Status } from "./store.js";

export const PRODUCT_MAX = 200;
export const QUANTITY_MAX = 1000;
export const REQUEST_ID_MAX = 100;
/**
 * Highest unit price: 10^10 cents (100 million per unit). With quantity <=
 * 1000 a total stays <= 10^13, far inside int64 and exact as a JS number.
 */
export const UNIT_PRICE_MAX_CENTS = 10_000_000_000n;

/** Every field of acme.order.v1.Order (for "unknown" vs "cannot be updated" mask paths). */
const ORDER_FIELDS = [
  "id", "user_id", "product", "quantity", "unit_price_cents", "total_cents",
  "status", "request_id", "owner_deleted", "created_at", "updated_at",
];

/** Allowed status changes (UpdateOrder); anything else is FAILED_PRECONDITION. */
const TRANSITIONS: Record<Status, readonly Status[]> = {
  PENDING: ["CONFIRMED", "CANCELLED"],
  CONFIRMED: ["SHIPPED", "CANCELLED"],
  SHIPPED: [],
  CANCELLED: [],
};

export interface OrderHandlerDeps {
  store: OrderStore;
  pageTokens: PageTokens;
  /** UserInternalService client (deadline, retry and breaker applied). */
  users: () => Client<typeof UserInternalService>;
  log: Logger;
}

export function orderHandlers(deps: OrderHandlerDeps): Partial<ServiceImpl<typeof OrderService>> {
  const { store, pageTokens, users, log } = deps;

  /** The order if the caller owns it or is an admin; NOT_FOUND otherwise. */
  const visible = async (ctx: HandlerContext, id: string): Promise<OrderRow> => {
    const me = requireUser(ctx);
    const o = await store.get(id);
    if (!o || (o.user_id !== me.userId && !isAdmin(me))) throw notFound("order");
    return o;
  };

  /** The owner must exist and be active (asked of the user service, never cached). */
  const checkOwner = async (userId: string) => {
    let res;
    try {
      res = await users().checkUser({ userId });
    } catch (err) {
      const ce = ConnectError.from(err);
      // An open circuit was already logged once, when it opened.
      if (isCircuitOpen(ce)) throw new ConnectError("user service unavailable (circuit open); retry later", Code.Unavailable);
      log.warn("user check failed", { code: Code[ce.code] });
      if (ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded) {
        throw new ConnectError("user service unavailable; retry later", Code.Unavailable);
      }
      throw new ConnectError("internal error", Code.Internal);
    }
    if (!res.exists || !res.active) throw permissionDenied("account is not active");
  };

  return {
    async createOrder(req, ctx) {
      const me = requireUser(ctx);
      const v = new Validator();
      v.text("product", req.product, { max: PRODUCT_MAX });
      v.int("quantity", req.quantity, { min: 1, max: QUANTITY_MAX });
      v.bigint("unitPriceCents", req.unitPriceCents, { min: 0n, max: UNIT_PRICE_MAX_CENTS });
      v.text("requestId", req.requestId, { max: REQUEST_ID_MAX });
      v.done();
      // AIP-155: a request id seen before returns the original order as it is
      // now, whatever the other fields say (no user check needed: it was done).
      const seen = await store.byRequest(me.userId, req.requestId);
      if (seen) return { order: toOrder(seen) };
      await checkOwner(me.userId);
      const { order } = await store.create({
        userId: me.userId,
        product: req.product,
        quantity: req.quantity,
        unitPriceCents: req.unitPriceCents,
        requestId: req.requestId,
      });
      return { order: toOrder(order) };
    },

    async getOrder(req, ctx) {
      new Validator().uuid("id", req.id).done();
      return { order: toOrder(await visible(ctx, req.id)) };
    },

    async listOrders(req, ctx) {
      const me = requireUser(ctx);
      const v = new Validator();
      v.enumValue("status", req.status, OrderStatusSchema, { allowUnspecified: true });
      v.uuid("userId", req.userId, { optional: true });
      v.done();
      const size = pageSize(req.pageSize);
      const owner = req.userId || me.userId;
      // Another user's orders are for admins only; refused whether or not that user exists.
      if (owner !== me.userId && !isAdmin(me)) throw permissionDenied("only admins may list another user's orders");
      const status = req.status === OrderStatus.UNSPECIFIED ? undefined : statusOf(req.status);
      // A token is valid only for the same owner and filter it was issued for.
      const scope = `orders:list:${owner.toLowerCase()}:${status ?? "*"}`;
      const after = pageTokens.decode(req.pageToken, scope);
      const rows = await store.list({ userId: owner, status, after, limit: size + 1 });
      const page = nextPage(rows, size, (r) => ({ ts: r.cursor_ts, id: r.id }), (c) => pageTokens.encode(c, scope));
      return { orders: page.items.map(toOrder), nextPageToken: page.nextPageToken };
    },

    async cancelOrder(req, ctx) {
      new Validator().uuid("id", req.id).done();
      const o = await visible(ctx, req.id);
      if (o.status !== "PENDING") throw failedPrecondition(`only a PENDING order can be cancelled (it is ${o.status})`);
      const reason = o.user_id === requireUser(ctx).userId ? CANCEL_REASON.requested : CANCEL_REASON.admin;
      const done = await store.setStatus(o.id, "PENDING", "CANCELLED", reason);
      if (!done) throw failedPrecondition("the order changed meanwhile and is no longer PENDING");
      return { order: toOrder(done) };
    },

    async updateOrder(req) {
      // Admin only (contract roles).
      const order: Order = req.order ?? badField("order", "is required");
      const v = new Validator().uuid("order.id", order.id);
      v.done();
      updatePaths(req.updateMask, {
        updatable: ["status"] as const,
        known: ORDER_FIELDS,
        populated: order.status !== OrderStatus.UNSPECIFIED ? ["status"] : [],
      });
      v.enumValue("order.status", order.status, OrderStatusSchema).done();
      const to = statusOf(order.status)!;
      const current = await store.get(order.id);
      if (!current) throw notFound("order");
      if (!TRANSITIONS[current.status].includes(to)) {
        throw failedPrecondition(`cannot change an order from ${current.status} to ${to}`);
      }
      // Compare-and-set on the status we checked: a concurrent change makes this fail, not skip a rule.
      // Events (OrderStatusChanged, OrderCancelled for a cancellation) commit with the change.
      const updated = await store.setStatus(order.id, current.status, to, CANCEL_REASON.admin);
      if (!updated) throw failedPrecondition("the order changed meanwhile; read it again");
      return { order: toOrder(updated) };
    },

    async deleteOrder(req) {
      // Admin only (contract roles).
      new Validator().uuid("id", req.id).done();
      if (!(await store.delete(req.id))) throw notFound("order");
      return {};
    },
  };
}
