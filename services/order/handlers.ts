// OrderService. The auth interceptor has already checked the token and the
// contract's roles; handlers decide ownership. An order the caller may not
// see is NOT_FOUND, exactly as a missing one.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { ReservationState, type CatalogueInternalService, type Reservation } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { OrderService, OrderStatus, OrderStatusSchema, type CreateOrderRequest, type Order } from "../../gen/acme/order/v1/order_pb.js";
import type { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { isCircuitOpen } from "../../platform/breaker.js";
import { isAdmin, requireUser } from "../../platform/auth/principal.js";
import { failedPrecondition, notFound, permissionDenied } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import { nextPage, pageSize, type PageTokens } from "../../platform/pagination.js";
import { badField, updatePaths, Validator } from "../../platform/validate.js";
import { statusOf, toOrder } from "./convert.js";
import { CANCEL_REASON } from "./events.js";
import { orderIdFor } from "./ids.js";
import { CommitDeadlinePassed, ReservationAbandoned, type OrderStore, type OrderWithLines, type Status } from "./store.js";

export const LINES_MAX = 50;
export const LINE_QUANTITY_MAX = 10_000;
export const REQUEST_ID_MAX = 100;

/** Every field of acme.order.v1.Order (for "unknown" vs "cannot be updated" mask paths). */
const ORDER_FIELDS = [
  "id", "user_id", "product", "quantity", "unit_price_cents", "total_cents",
  "status", "request_id", "owner_deleted", "created_at", "updated_at", "lines", "total",
];

/** The fields of CreateOrderRequest that lines replaced: refused when set, never read. */
const REMOVED = "is no longer accepted: an order names catalogue products in lines ({productId, quantity}) and the catalogue prices them";

/** INVALID_ARGUMENT for a bad request, naming every bad field; the lines as the catalogue takes them. */
function validateCreate(req: CreateOrderRequest): { productId: string; quantity: number }[] {
  const v = new Validator();
  if (req.product !== "") v.add("product", REMOVED);
  if (req.quantity !== 0) v.add("quantity", REMOVED);
  if (req.unitPriceCents !== 0n) v.add("unitPriceCents", REMOVED);
  if (req.lines.length === 0) v.add("lines", "is required: 1..50 lines");
  if (req.lines.length > LINES_MAX) v.add("lines", `must have at most ${LINES_MAX} lines`);
  const seen = new Set<string>();
  req.lines.slice(0, LINES_MAX).forEach((l, i) => {
    v.uuid(`lines[${i}].productId`, l.productId);
    v.int(`lines[${i}].quantity`, l.quantity, { min: 1, max: LINE_QUANTITY_MAX });
    const key = l.productId.toLowerCase();
    if (l.productId && seen.has(key)) v.add(`lines[${i}].productId`, "names the product of an earlier line: one line per product");
    seen.add(key);
  });
  v.text("requestId", req.requestId, { max: REQUEST_ID_MAX });
  v.done();
  return req.lines.map((l) => ({ productId: l.productId.toLowerCase(), quantity: l.quantity }));
}

const aborted = (msg: string) => new ConnectError(msg, Code.Aborted);
const RETRY_NEW_KEY = "the stock reserved for this requestId was released; send the order again with a new requestId";

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
  /** CatalogueInternalService client (deadline and retries applied; every call is idempotent by order id). */
  catalogue: () => Client<typeof CatalogueInternalService>;
  /** An order is inserted only while now < reserved_until - this (CATALOGUE_COMMIT_MARGIN_SECONDS). */
  commitMarginMs: number;
  log: Logger;
}

export function orderHandlers(deps: OrderHandlerDeps): Partial<ServiceImpl<typeof OrderService>> {
  const { store, pageTokens, users, catalogue, commitMarginMs, log } = deps;

  /** The order if the caller owns it or is an admin; NOT_FOUND otherwise. */
  const visible = async (ctx: HandlerContext, id: string): Promise<OrderWithLines> => {
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

  /** Reserve the lines for the order id (idempotent); the catalogue's refusals pass through as they are. */
  const reserve = async (orderId: string, lines: { productId: string; quantity: number }[]): Promise<Reservation> => {
    try {
      const res = await catalogue().reserve({ orderId, lines });
      if (!res.reservation) throw new Error("Reserve answered without a reservation");
      return res.reservation;
    } catch (err) {
      const ce = ConnectError.from(err);
      // Not enough stock, an unknown or inactive product (PreconditionFailure names it), a bad line.
      if (ce.code === Code.FailedPrecondition || ce.code === Code.InvalidArgument) throw ce;
      if (isCircuitOpen(ce) || ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded) {
        // The reservation may have been made: a retry with the same requestId reuses it.
        throw new ConnectError("catalogue unavailable; retry later with the same requestId", Code.Unavailable);
      }
      log.warn("catalogue reserve failed", { code: Code[ce.code], message: ce.rawMessage });
      throw new ConnectError("internal error", Code.Internal);
    }
  };

  /**
   * Give up an order id's reservation: recorded first (the order can then never
   * be inserted), then released at once (best effort: the catalogue's sweeper
   * releases it anyway after reserved_until). Nothing when the order exists.
   */
  const giveUp = async (orderId: string, reason: string) => {
    if (!(await store.abandon(orderId, reason))) return;
    await catalogue().release({ orderId }).catch((err) => log.info("release after a failed create failed; the catalogue's sweeper will", { orderId, code: Code[ConnectError.from(err).code] }));
  };

  return {
    async createOrder(req, ctx) {
      const me = requireUser(ctx);
      const lines = validateCreate(req);
      // AIP-155: a request id seen before returns the original order as it is
      // now, whatever the other fields say (no user check needed: it was done).
      const seen = await store.byRequest(me.userId, req.requestId);
      if (seen) return { order: toOrder(seen) };
      await checkOwner(me.userId);
      // The same (owner, request id) is the same order id, so a retry gets the same reservation.
      const orderId = orderIdFor(me.userId, req.requestId);
      if (await store.abandoned(orderId)) throw aborted(RETRY_NEW_KEY);
      const reservation = await reserve(orderId, lines);
      if (reservation.state !== ReservationState.PENDING) {
        // Held or committed: a concurrent request with the same id made the order since our first
        // look (AIP-155: return it). Else no order, and a reservation released (given up, or
        // expired and swept) or used by an order since deleted.
        const made = await store.byRequest(me.userId, req.requestId);
        if (made) return { order: toOrder(made) };
        throw aborted(RETRY_NEW_KEY);
      }
      if (reservation.totals.length !== 1) {
        await giveUp(orderId, "currencies");
        throw failedPrecondition(`the lines of one order must share a currency (these are in ${reservation.totals.map((t) => t.currency).join(", ")})`);
      }
      const commitBefore = new Date(timestampDate(reservation.reservedUntil!).getTime() - commitMarginMs);
      let order: OrderWithLines;
      try {
        ({ order } = await store.create({
          id: orderId,
          userId: me.userId,
          requestId: req.requestId,
          currency: reservation.totals[0].currency,
          commitBefore,
          // The reservation is the truth: a retry whose lines differ from the first attempt's gets the first's (AIP-155).
          lines: reservation.lines.map((l) => ({
            productId: l.productId,
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            unitPriceMinor: l.unitPrice?.amountMinor ?? 0n,
            currency: l.unitPrice?.currency ?? "",
          })),
        }));
      } catch (err) {
        if (err instanceof ReservationAbandoned) throw aborted(RETRY_NEW_KEY);
        if (err instanceof CommitDeadlinePassed) {
          await giveUp(orderId, "deadline");
          throw aborted("the stock reservation took too long and was released; send the order again with a new requestId");
        }
        // Best effort: with the database down the reservation is kept (a retry reuses it; else the catalogue's sweeper releases it).
        await giveUp(orderId, "insert failed").catch(() => undefined);
        throw err;
      }
      // Best effort: the catalogue also holds it when OrderCreated arrives (its order-events consumer).
      await catalogue().hold({ orderId }).catch((err) => log.info("hold after create failed; the OrderCreated event will hold it", { orderId, code: Code[ConnectError.from(err).code] }));
      return { order: toOrder(order) };
    },

    async listAllOrders(req) {
      // Admin only (contract roles).
      const v = new Validator();
      v.enumValue("status", req.status, OrderStatusSchema, { allowUnspecified: true });
      v.uuid("userId", req.userId, { optional: true });
      v.uuid("productId", req.productId, { optional: true });
      const after = req.createdAfter ? timestampDate(req.createdAfter) : undefined;
      const before = req.createdBefore ? timestampDate(req.createdBefore) : undefined;
      if (after && Number.isNaN(after.getTime())) v.add("createdAfter", "is not a valid timestamp");
      if (before && Number.isNaN(before.getTime())) v.add("createdBefore", "is not a valid timestamp");
      if (after && before && after >= before) v.add("createdBefore", "must be later than createdAfter");
      v.done();
      const size = pageSize(req.pageSize);
      const status = req.status === OrderStatus.UNSPECIFIED ? undefined : statusOf(req.status);
      const userId = req.userId.toLowerCase() || undefined;
      const productId = req.productId.toLowerCase() || undefined;
      // A token is valid only for the filters it was issued for.
      const scope = `orders:all:${userId ?? "*"}:${status ?? "*"}:${productId ?? "*"}:${after?.toISOString() ?? "*"}:${before?.toISOString() ?? "*"}`;
      const cursor = pageTokens.decode(req.pageToken, scope);
      const rows = await store.listAll({ userId, status, productId, createdAfter: after, createdBefore: before, after: cursor, limit: size + 1 });
      const page = nextPage(rows, size, (r) => ({ ts: r.cursor_ts, id: r.id }), (c) => pageTokens.encode(c, scope));
      return { orders: page.items.map(toOrder), nextPageToken: page.nextPageToken };
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
      const o = await store.get(req.id);
      if (!o || !(await store.delete(req.id))) throw notFound("order");
      // A PENDING order's reserved units go back (best effort: a held reservation is never swept).
      if (o.status === "PENDING" && o.lines.length) {
        await catalogue().release({ orderId: o.id }).catch((err) => log.warn("release of a deleted order's stock failed", { orderId: o.id, code: Code[ConnectError.from(err).code] }));
      }
      return {};
    },
  };
}
