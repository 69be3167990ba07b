// CatalogueInternalService: stock reservations for orders, called by the
// order service with a service token (scope "catalogue.reserve"). Refusals
// are FAILED_PRECONDITION with a google.rpc.PreconditionFailure naming what
// failed: type "STOCK" (not enough units; subject the product id, the
// description how many are left), "PRODUCT" (unknown or inactive product;
// subject the product id) or "RESERVATION" (the order's reservation cannot
// make this move; subject the order id). An unknown order is NOT_FOUND.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { CatalogueInternalService } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { PreconditionFailureSchema, PreconditionFailure_ViolationSchema } from "../../gen/google/rpc/error_details_pb.js";
import { notFound } from "../../platform/errors.js";
import { Validator } from "../../platform/validate.js";
import { toReservation } from "./convert.js";
import { ReserveRefused, type ReservationStore, type Transition } from "./reservations.js";

export const LINES_MAX = 50;
export const QUANTITY_MAX = 10_000;

/** FAILED_PRECONDITION carrying one google.rpc.PreconditionFailure violation. */
export function preconditionFailed(type: string, subject: string, description: string): ConnectError {
  const detail = create(PreconditionFailureSchema, { violations: [create(PreconditionFailure_ViolationSchema, { type, subject, description })] });
  return new ConnectError(description, Code.FailedPrecondition, undefined, [{ desc: PreconditionFailureSchema, value: detail }]);
}

const VERB: Record<Exclude<Transition, "expire">, string> = { hold: "held", release: "released", commit: "committed" };

export function internalHandlers(store: ReservationStore): Partial<ServiceImpl<typeof CatalogueInternalService>> {
  const move = async (orderId: string, t: Exclude<Transition, "expire">) => {
    new Validator().uuid("orderId", orderId).done();
    const id = orderId.toLowerCase();
    const r = await store.transition(id, t);
    if (r.outcome === "missing") throw notFound("reservation");
    if (r.outcome === "refused") {
      const why = r.state === "pending" && r.expired ? "expired" : r.state;
      throw preconditionFailed("RESERVATION", id, `the reservation of order ${id} is ${why} and cannot be ${VERB[t]}`);
    }
    const rows = r.outcome === "changed" ? await store.get(id) : r.rows;
    return { reservation: toReservation(rows), changed: r.outcome === "changed" };
  };

  return {
    async reserve(req) {
      const v = new Validator().uuid("orderId", req.orderId);
      if (req.lines.length === 0) v.add("lines", "is required");
      if (req.lines.length > LINES_MAX) v.add("lines", `must have at most ${LINES_MAX} lines`);
      const seen = new Set<string>();
      req.lines.slice(0, LINES_MAX).forEach((l, i) => {
        v.uuid(`lines[${i}].productId`, l.productId);
        v.int(`lines[${i}].quantity`, l.quantity, { min: 1, max: QUANTITY_MAX });
        const key = l.productId.toLowerCase();
        if (l.productId && seen.has(key)) v.add(`lines[${i}].productId`, "names a product of an earlier line: one line per product");
        seen.add(key);
      });
      v.done();
      const lines = req.lines.map((l) => ({ productId: l.productId.toLowerCase(), quantity: l.quantity }));
      try {
        const { rows, created } = await store.reserve(req.orderId.toLowerCase(), lines);
        return { reservation: toReservation(rows), created };
      } catch (err) {
        if (!(err instanceof ReserveRefused)) throw err;
        throw preconditionFailed(err.reason === "insufficient" ? "STOCK" : "PRODUCT", err.productId, err.message);
      }
    },
    hold: (req) => move(req.orderId, "hold"),
    release: (req) => move(req.orderId, "release"),
    commit: (req) => move(req.orderId, "commit"),
  };
}
