// Hot queries built and compiled once. Kysely builds an operation tree and
// compiles it to SQL text on every call: for a point select that is ~20-40 us
// of CPU, up to a third of the whole read on the client side (bench/micro.ts,
// rows "... kysely query built per call" vs "... compiled once"). `prepared`
// runs the builder once, with stand-ins for its arguments, and from then on
// sends the same SQL text with each call's values in the stand-ins' places.
// The query is still written with kysely (types first, SQL visible); only its
// build is skipped.
//
//   const byId = prepared(db, (id: string) => db.selectFrom("users.profiles").selectAll().where("id", "=", id));
//   const row = await byId.first(userId);
//
// The builder must use its arguments as values only (compared, inserted,
// set), never in code that decides the query's shape: an argument that does
// not end up as a bound parameter is refused when the query is compiled.
import type { Compilable, CompiledQuery, Kysely } from "kysely";

const STAND_IN = Symbol("prepared.argument");
interface StandIn {
  readonly [STAND_IN]: number;
}

const argumentOf = (p: unknown): number | undefined =>
  typeof p === "object" && p !== null && STAND_IN in p ? (p as StandIn)[STAND_IN] : undefined;

export interface Prepared<A extends unknown[], O> {
  /** Every row. */
  all(...args: A): Promise<O[]>;
  /** The first row, or undefined when there is none. */
  first(...args: A): Promise<O | undefined>;
  /** The SQL text sent (compiled on first use). */
  readonly sql: string;
}

export function prepared<A extends unknown[], O>(db: Kysely<any>, build: (...args: A) => Compilable<O>): Prepared<A, O> {
  /** The compiled query and, for each bound parameter, the argument it takes (undefined: a constant of the query). */
  let compiled: { query: CompiledQuery<O>; slots: (number | undefined)[] } | undefined;

  const compile = () => {
    const standIns = Array.from({ length: build.length }, (_, i): StandIn => ({ [STAND_IN]: i }));
    const query = build(...(standIns as unknown as A)).compile();
    const slots = query.parameters.map(argumentOf);
    for (let i = 0; i < standIns.length; i++) {
      if (!slots.includes(i)) throw new Error(`prepared query: argument ${i + 1} is not bound as a value in: ${query.sql}`);
    }
    return { query, slots };
  };

  const run = (args: A) => {
    const { query, slots } = (compiled ??= compile());
    const parameters = query.parameters.map((p, i) => {
      const a = slots[i];
      return a === undefined ? p : args[a];
    });
    return db.executeQuery<O>({ ...query, parameters });
  };

  return {
    all: async (...args) => (await run(args)).rows,
    first: async (...args) => (await run(args)).rows[0],
    get sql() {
      return (compiled ??= compile()).query.sql;
    },
  };
}
