// In-process baselines, run pinned to the server's core like the product:
// raw bcrypt compares/s (as many in flight as the process has cores, what
// the auth service's hasher allows by default) and raw crypto.verify ES256/s
// against platform/auth/verifier.ts on the same token. Prints JSON.
import { availableParallelism } from "node:os";
import { bcryptRate, jwtRates } from "../lib/inproc.js";

const seconds = Number(process.argv[2] ?? 5);
const jwt = await jwtRates(Math.max(1, seconds / 2));
const concurrency = availableParallelism();
const bcrypt = await bcryptRate(12, concurrency, seconds);
console.log(JSON.stringify({ bcrypt, bcryptConcurrency: concurrency, ...jwt }));
