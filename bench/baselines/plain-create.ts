// The product process of `npm start` (every service and the embedded edge on
// one port, configured from the environment like app/main.ts) with the
// catalogue replaced by bench/lib/catalogue-stand-in.ts: the baseline
// "plain create" of `npm run bench`. Bench-only; the product has no such mode.
import { startSystem } from "../../app/system.js";
import { loadConfig } from "../../platform/config.js";
import { catalogueStandIn } from "../lib/catalogue-stand-in.js";

const system = await startSystem({
  config: loadConfig(),
  services: ["auth", "user", "order", "notification", "catalogue"],
  edge: true,
  definitions: { catalogue: catalogueStandIn },
});
let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  system.stop().then(() => process.exit(0), () => process.exit(1));
});
