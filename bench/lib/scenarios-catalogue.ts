// The catalogue's rows: order creation with its reservation against the same
// create without the catalogue's work ("plain create", bench/lib/
// catalogue-stand-in.ts), and full-text search over 100,000 products.
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, PostgresDialect, type CompiledQuery } from "kysely";
import pg from "pg";
import { searchProducts } from "../../services/catalogue/search.js";
import type { CatalogueDb } from "../../services/catalogue/store.js";
import { freePort } from "../../test/support/servers.js";
import { clusterCpuMs, processCpuMs } from "./cpu.js";
import { createDatabase, dropDatabase } from "./edge.js";
import { h2load } from "./load.js";
import { pidOf, startSystem } from "./procs.js";
import type { Row } from "./report.js";
import { IN_FLIGHT, log, QUICK, repeat, SECONDS, WARMUP } from "./run-settings.js";
import { orderLoad, productInStock, registerUser } from "./scenarios.js";
import { median, type RunResult } from "./stats.js";

/** The product under test: its URL and pid, a user's token, its Postgres and its environment. */
export interface ProductUnderTest {
  base: string;
  pid: number;
  token: string;
  pgUrl: string;
  env: Record<string, string>;
}

const ORDER_SECONDS = QUICK ? 3 : SECONDS;

/**
 * Orders for a few seconds, unmeasured, before each order row (on top of orderLoad's own
 * second): the plain-create process is new and the product has made no order yet, so both
 * start their create path with cold code.
 */
const warmOrders = (base: string, token: string, productId: string) => orderLoad(base, token, 2, 20, productId);

/** The pid of the Postgres server behind a URL (its data directory's postmaster.pid). */
async function postmasterOf(pgUrl: string): Promise<number> {
  const c = new pg.Client(pgUrl);
  await c.connect();
  try {
    const { rows: [d] } = await c.query("show data_directory");
    return Number(readFileSync(join(d.data_directory, "postmaster.pid"), "utf8").split("\n")[0]);
  } finally {
    await c.end();
  }
}

/**
 * CPU per request over runs of a load, medians: the process under test's and
 * Postgres's (which serves more than this load: its other clients are idle).
 * Requests of a run: its rate over its measured and warm-up seconds.
 */
function cpuMeter(pid: number, postmaster: number, secondsWithWarmup: number) {
  const node: number[] = [];
  const postgres: number[] = [];
  return {
    async measure(run: () => Promise<RunResult>): Promise<RunResult> {
      const [n0, p0] = [processCpuMs(pid), clusterCpuMs(postmaster)];
      const r = await run();
      const requests = r.rps * secondsWithWarmup;
      node.push(((processCpuMs(pid) - n0) * 1000) / requests);
      postgres.push(((clusterCpuMs(postmaster) - p0) * 1000) / requests);
      return r;
    },
    node: () => median(node),
    postgres: () => median(postgres),
  };
}

/**
 * The plain create: the product's process (bench/baselines/plain-create.ts) with the catalogue
 * stand-in, in a database of its own (so the product's relay and consumers never see its
 * orders), its own data dir (keys), the same Redis; the same Node client as the real row.
 */
async function plainCreate({ pgUrl, env }: ProductUnderTest, postmaster: number) {
  const dbName = `bench_plain_${process.pid}`;
  const dataDir = mkdtempSync(join(tmpdir(), "bench-plain-"));
  try {
    const databaseUrl = await createDatabase(pgUrl, dbName);
    const sys = await startSystem(await freePort(), { ...env, DATABASE_URL: databaseUrl, DATA_DIR: dataDir }, undefined, undefined, "bench/baselines/plain-create.ts");
    try {
      const base = `http://127.0.0.1:${sys.port}`;
      const user = await registerUser(base);
      // Any product id: the stand-in reserves whatever it is asked for.
      const productId = randomUUID();
      await warmOrders(base, user.accessToken, productId);
      const cpu = cpuMeter(pidOf(sys), postmaster, ORDER_SECONDS + 1);
      const r = await cpu.measure(() => orderLoad(base, user.accessToken, ORDER_SECONDS, 20, productId));
      return { ...r, cpu };
    } finally {
      await sys.stop();
    }
  } finally {
    await dropDatabase(pgUrl, dbName).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** "plain create", then "create order with reservation" on the product, with its ratio to the first. */
export async function orderRows(p: ProductUnderTest): Promise<Row[]> {
  const postmaster = await postmasterOf(p.pgUrl);
  log("baseline: plain create (the product's process, catalogue Reserve/Hold answered in memory)");
  const { cpu: plainCpu, ...plain } = await plainCreate(p, postmaster);
  log("scenario: create order with reservation");
  const product = await productInStock(p.base);
  await warmOrders(p.base, p.token, product);
  const cpu = cpuMeter(p.pid, postmaster, ORDER_SECONDS + 1);
  const orders = await cpu.measure(() => orderLoad(p.base, p.token, ORDER_SECONDS, 20, product));
  const pgUs = (m: typeof cpu) => `Postgres ${m.postgres().toFixed(0)} us/req`;
  return [
    {
      scenario: `baseline: plain create (user check + insert; catalogue Reserve/Hold answered in memory, no database work), 20 in flight, Node client; ${pgUs(plainCpu)}`,
      ...plain, runs: 1, cpuUs: plainCpu.node(),
    },
    {
      scenario: `create order with reservation (user check + catalogue Reserve + insert + Hold), one product, 20 in flight, Node client; ${pgUs(cpu)}`,
      ...orders, runs: 1, cpuUs: cpu.node(), ratio: orders.rps / plain.rps, ratioOf: "plain create",
    },
  ];
}

// Products made of these words: a name "<adjective> <material> <noun>", a description of
// a dozen words; "limited" in one product in 1000 only. The queries below hit each kind.
const ADJECTIVES = ["brushed", "compact", "classic", "folding", "heavy", "light", "modern", "rustic", "sturdy", "slim", "vintage", "wide", "round", "square", "tall", "small", "large", "soft", "bright", "quiet"];
const MATERIALS = ["oak", "walnut", "steel", "brass", "glass", "linen", "wool", "leather", "cotton", "ceramic", "bamboo", "marble", "copper", "pine", "stone", "felt"];
const NOUNS = ["lamp", "chair", "table", "mug", "notebook", "pen", "shelf", "rug", "clock", "vase", "bowl", "stool", "desk", "bench", "mirror", "basket", "kettle", "blanket", "cushion", "frame", "candle", "tray", "jar", "hook", "box"];
const EXTRA = [
  "handmade", "durable", "elegant", "simple", "washable", "stackable", "portable", "adjustable", "recycled", "natural", "polished", "matte", "glossy", "warm", "cool",
  "everyday", "office", "kitchen", "garden", "bedroom", "studio", "travel", "gift", "family", "designer", "sturdy", "smooth", "textured", "neutral", "colourful", "minimal",
  "scandinavian", "industrial", "timeless", "practical", "generous", "careful", "finish", "edges", "corners", "grain", "weave", "glaze", "coating", "base", "handle", "lid",
  "legs", "top", "surface", "pattern", "stripes", "dots", "border", "seams", "stitching", "joints", "fittings", "screws", "feet", "shade",
];
export const SEARCH_QUERIES = ["lamp", "walnut chair", '"brushed steel"', "limited"];
export const SEARCH_PRODUCTS = 100_000;

/** SEARCH_PRODUCTS products in one INSERT ... SELECT (the tsvector and GIN index fill themselves), then VACUUM ANALYZE. */
async function loadProducts(c: pg.Client): Promise<void> {
  const w = (arr: string[], expr: string, param: number) => `($${param}::text[])[1 + (${expr}) % ${arr.length}]`;
  await c.query(
    `insert into catalogue.products (id, sku, name, description, price_minor, currency, stock)
     select gen_random_uuid(), 'BENCH-' || i,
       ${w(ADJECTIVES, "i", 2)} || ' ' || ${w(MATERIALS, "i / 7", 3)} || ' ' || ${w(NOUNS, "i * 13", 4)},
       'A ' || ${w(ADJECTIVES, "i * 3 + 1", 2)} || ' ' || ${w(NOUNS, "i * 11 + 2", 4)} || ' in ' || ${w(MATERIALS, "i * 5 + 3", 3)} || ', ' ||
         ${w(EXTRA, "i * 17", 5)} || ' ' || ${w(EXTRA, "i * 29 + 7", 5)} || ' and ' || ${w(EXTRA, "i * 31 + 11", 5)} || ', with ' ||
         ${w(EXTRA, "i * 37 + 13", 5)} || ' ' || ${w(EXTRA, "i * 41 + 17", 5)} || '.' || case when i % 1000 = 0 then ' Limited edition.' else '' end,
       100 + (i * 7919) % 100000, 'EUR', 1000
     from generate_series(1, $1::int) i`,
    [SEARCH_PRODUCTS, ADJECTIVES, MATERIALS, NOUNS, EXTRA],
  );
  // Autovacuum's work, done now: the GIN index's pending list merged, statistics for the planner.
  await c.query("vacuum analyze catalogue.products");
}

/** EXPLAIN ANALYZE of the product's own search SQL (services/catalogue/search.ts, captured as Kysely compiles it). */
async function explainSearch(pgUrl: string, q: string): Promise<string[]> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
  let compiled: CompiledQuery | undefined;
  const db = new Kysely<CatalogueDb>({ dialect: new PostgresDialect({ pool }), log: (e) => void (compiled ??= e.query) });
  try {
    await searchProducts(db, { text: q, limit: 21 }); // the first page, as the handler asks for it
    const { rows } = await pool.query(`explain (analyze, buffers) ${compiled!.sql}`, [...compiled!.parameters]);
    return rows.map((r: Record<string, string>) => r["QUERY PLAN"]);
  } finally {
    await db.destroy();
  }
}

/** Search at 100,000 products over REST (GET /v1/products/search, h2c): as fast as it goes, then at half that rate. */
export async function searchRows(p: ProductUnderTest): Promise<Row[]> {
  const rows: Row[] = [];
  log(`setup: ${SEARCH_PRODUCTS} products into the catalogue`);
  const c = new pg.Client(p.pgUrl);
  await c.connect();
  try {
    const t0 = performance.now();
    await loadProducts(c);
    const loadS = (performance.now() - t0) / 1000;
    const { rows: [n] } = await c.query("select count(*)::int as n from catalogue.products where active");
    rows.push({ scenario: `catalogue search: setup, ${n.n} active products (INSERT ... SELECT + VACUUM ANALYZE, s)`, note: loadS.toFixed(1) });
    for (const q of SEARCH_QUERIES) {
      const { rows: [m] } = await c.query("select count(*)::int as n from catalogue.products p where p.active and p.search @@ websearch_to_tsquery('simple', $1)", [q]);
      const plan = await explainSearch(p.pgUrl, q);
      log(`EXPLAIN ANALYZE of the search, q=${q}:\n${plan.join("\n")}`);
      const scan = plan.map((l) => /(Bitmap Index Scan on \w+|Index Scan using \w+|Seq Scan on \w+)/.exec(l)?.[1]).find(Boolean) ?? "?";
      const ms = /Execution Time: ([\d.]+) ms/.exec(plan.join("\n"))?.[1];
      rows.push({ scenario: `  q=${q}: ${m.n} matches; plan: ${scan}, ${ms} ms in Postgres (EXPLAIN ANALYZE)` });
    }
  } finally {
    await c.end();
  }
  const urls = SEARCH_QUERIES.map((q) => `${p.base}/v1/products/search?q=${encodeURIComponent(q)}`);
  log("scenario: catalogue search, 50 in flight");
  const cpu = cpuMeter(p.pid, await postmasterOf(p.pgUrl), SECONDS + WARMUP);
  const max = await repeat(() => cpu.measure(() => h2load({ url: urls, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP })));
  rows.push({
    scenario: `catalogue search at ${SEARCH_PRODUCTS.toLocaleString("en")} products: GET /v1/products/search (the ${SEARCH_QUERIES.length} queries in turn, first page), 50 in flight; Postgres ${cpu.postgres().toFixed(0)} us/req`,
    ...max, cpuUs: cpu.node(),
  });
  const half = Math.max(1, Math.round(max.rps / 2));
  log(`scenario: catalogue search at half load (${half} req/s offered)`);
  const open = await repeat(() => h2load({ url: urls, connections: 2, streams: 64, seconds: SECONDS, warmupSeconds: WARMUP, rps: Math.max(1, Math.round(half / 2)) }));
  rows.push({ scenario: `  catalogue search at half load (${half} req/s offered, open loop): p99`, ...open });
  return rows;
}
