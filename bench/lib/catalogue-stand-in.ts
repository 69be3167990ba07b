// The bench's "plain create" baseline: a catalogue module that answers the
// order service's internal calls (Reserve, Hold, Release, Commit) from memory,
// with no database work, no outbox and no consumer. Hosted in place of the
// real catalogue (app/system.ts `definitions`), the order service's create
// path is otherwise the product's: the same local transport, interceptors,
// user check, order insert and outbox; only the catalogue's work is gone.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CatalogueInternalService, MoneySchema, ReservationSchema, ReservationState, ReservedLineSchema, type Reservation,
} from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import type { ServiceDefinition } from "../../platform/service.js";

const UNIT_PRICE = 1_999n;
const money = (amountMinor: bigint) => create(MoneySchema, { amountMinor, currency: "EUR" });

/** What the real Reserve answers for a new reservation (every line priced, one currency, 120 s to commit). */
function pending(orderId: string, lines: { productId: string; quantity: number }[]): Reservation {
  const now = new Date();
  const reserved = lines.map((l) =>
    create(ReservedLineSchema, {
      productId: l.productId.toLowerCase(), sku: "BENCH-STAND-IN", name: "Stand-in product", quantity: l.quantity,
      unitPrice: money(UNIT_PRICE), lineTotal: money(UNIT_PRICE * BigInt(l.quantity)),
    }),
  );
  return create(ReservationSchema, {
    orderId, state: ReservationState.PENDING, lines: reserved,
    totals: [money(reserved.reduce((t, l) => t + l.lineTotal!.amountMinor, 0n))],
    reservedUntil: timestampFromDate(new Date(now.getTime() + 120_000)), createdAt: timestampFromDate(now), updatedAt: timestampFromDate(now),
  });
}

// The order service reads nothing of a Hold/Release/Commit answer but its error: the state moved is enough.
const moved = (state: ReservationState) => (req: { orderId: string }) => ({
  reservation: create(ReservationSchema, { orderId: req.orderId, state }),
  changed: true,
});

const handlers: Partial<ServiceImpl<typeof CatalogueInternalService>> = {
  reserve: (req) => ({ reservation: pending(req.orderId.toLowerCase(), req.lines), created: true }),
  hold: moved(ReservationState.HELD),
  release: moved(ReservationState.RELEASED),
  commit: moved(ReservationState.COMMITTED),
};

export const catalogueStandIn: ServiceDefinition = {
  name: "catalogue",
  prepare: async () => ({}),
  create: async () => ({
    name: "catalogue",
    services: [CatalogueInternalService],
    routes: (router) => router.service(CatalogueInternalService, handlers),
  }),
};
