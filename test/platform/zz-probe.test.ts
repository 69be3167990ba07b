import http from "node:http";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { Rng } from "../fuzz/random.js";
import { brokenBody } from "../fuzz/rest-cases.js";
import { connectCases } from "../fuzz/rpc-cases.js";
import { pool } from "../fuzz/send.js";
describe("probe", function () {
  this.timeout(300_000);
  let t: TestSystem;
  before(async () => { t = await startTestSystem(); });
  after(async () => t?.stop());
  for (const seed of [15, 16, 17, 18]) it("connect cases " + seed, async () => {
    (globalThis as any).PROBE_LOG = [];
    const cases = connectCases(1200, new Rng(seed), { user: undefined, victim: undefined, admin: undefined } as never, brokenBody);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const u = new URL(t.url);
    const hung: string[] = [];
    await pool(cases, 8, (req) => new Promise<void>((resolve) => {
      let port = 0;
      const r = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.path, headers: { ...req.headers, ...(req.body ? { "content-length": String(req.body.length) } : {}) }, agent, timeout: 4000 }, (res) => { res.resume(); res.on("end", () => resolve()); });
      r.on("socket", (s) => { const f = () => (port = s.localPort!); if (s.localPort) f(); else s.once("connect", f); });
      r.on("timeout", () => { hung.push(`${port} ${req.method} ${req.path} ${JSON.stringify(req.headers)} ${req.what}`); r.destroy(); });
      r.on("error", () => resolve());
      r.end(req.body);
    }));
    agent.destroy();
    console.log(seed, "hung", hung.length);
    const log: string[] = (globalThis as any).PROBE_LOG;
    for (const h of hung) {
      const port = h.split(" ")[0];
      console.log("HUNG", h.slice(0, 300));
      console.log(log.filter((l) => l.startsWith(port + " ")).slice(-6).map((l) => "   " + l.slice(0, 250)).join("\n"));
    }
  });
});
