// In-process micro benchmarks: raw bcrypt and crypto.verify rates, and our
// verifier on the same tokens.
import { createSign, generateKeyPairSync, randomUUID, verify as cryptoVerify, type KeyObject } from "node:crypto";
import bcrypt from "bcrypt";
import { markRevocationsLoaded } from "../../platform/auth/revocation.js";
import { createVerifier } from "../../platform/auth/verifier.js";
import { memoryStore } from "../../platform/kv.js";
import { median } from "./stats.js";

/** Compares per second with `concurrency` in flight for `seconds`. */
export async function bcryptRate(cost: number, concurrency: number, seconds: number): Promise<number> {
  const hash = await bcrypt.hash("correct horse battery", cost);
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await bcrypt.compare("correct horse battery", hash);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

function loop(seconds: number, fn: () => unknown): number {
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function loopAsync(seconds: number, fn: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) await fn();
    n += 100;
  }
  return n / ((performance.now() - t0) / 1000);
}

function es256Token(privateKey: KeyObject, kid: string): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${enc({ alg: "ES256", typ: "at+jwt", kid })}.${enc({
    iss: "acme-auth", aud: "acme-api", sub: randomUUID(), sid: randomUUID(), jti: randomUUID(), roles: ["user"], iat: now, nbf: now, exp: now + 900,
  })}`;
  const sig = createSign("sha256").update(head).sign({ key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${head}.${sig.toString("base64url")}`;
}

/**
 * Raw crypto.verify of an ES256 JWT signature vs our full verifier on the same
 * token (every check, revocation lookup in an in-process store: the Redis
 * round trip is I/O, not CPU), with its memory of verified tokens off, so
 * every call checks the signature (a token's first call); and the same
 * verifier remembering tokens (its later calls). Alternated in 3 rounds; medians.
 */
export async function jwtRates(seconds: number): Promise<{ raw: number; ours: number; remembered: number }> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const token = es256Token(privateKey, "k1");
  const [h, p, s] = token.split(".");
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, "base64url");
  const kv = memoryStore();
  await markRevocationsLoaded(kv); // no auth service here to load the revocation list
  const verifierWith = (cacheSize: number) =>
    createVerifier({
      issuer: "acme-auth",
      userAudience: "acme-api",
      serviceAudiences: [],
      keys: { get: async (kid) => (kid === "k1" ? publicKey : undefined) },
      kv,
      cacheSize,
    });
  const firstSight = verifierWith(0);
  const remembering = verifierWith(1000);
  const raws: number[] = [];
  const ours: number[] = [];
  const remembered: number[] = [];
  for (let i = 0; i < 3; i++) {
    raws.push(loop(seconds / 3, () => cryptoVerify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, sig)));
    ours.push(await loopAsync(seconds / 3, () => firstSight.verify(token)));
    remembered.push(await loopAsync(seconds / 6, () => remembering.verify(token)));
  }
  await kv.close();
  return { raw: median(raws), ours: median(ours), remembered: median(remembered) };
}
