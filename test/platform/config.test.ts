import { strict as assert } from "node:assert";
import { ConfigError, loadConfig } from "../../platform/config.js";

describe("config from the environment", () => {
  it("has defaults that need nothing set: port 8080, embedded database and store", () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.bcryptCost, 12);
    assert.equal(c.jwt.accessTtlSeconds, 900);
  });

  for (const [name, value, pattern] of [
    ["PORT", "eighty", /PORT must be an integer/],
    ["PORT", "70000", /PORT must be between 0 and 65535/],
    ["BCRYPT_COST", "8", /BCRYPT_COST must be between 10 and 15/],
    ["DATABASE_URL", "mysql://x", /DATABASE_URL must use postgres: or postgresql:/],
    ["REDIS_URL", "not a url", /REDIS_URL must be a URL/],
    ["LOG_LEVEL", "loud", /LOG_LEVEL must be one of debug, info, warn, error/],
    ["METRICS_PORT", "public", /METRICS_PORT must be an integer/],
  ] as const) {
    it(`names the bad variable: ${name}=${value}`, () => {
      assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.variable, name);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }

  it("puts /metrics on a loopback listener of its own (9464), or none with METRICS_PORT=off", () => {
    assert.deepEqual(loadConfig({}).metrics, { port: 9464, host: "127.0.0.1" });
    assert.deepEqual(loadConfig({ METRICS_PORT: "9100", METRICS_HOST: "0.0.0.0" }).metrics, { port: 9100, host: "0.0.0.0" });
    assert.equal(loadConfig({ METRICS_PORT: "off" }).metrics, undefined);
  });

  it("stops `npm start` with one line naming the variable", async () => {
    const { execFile } = await import("node:child_process");
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "app/main.ts"], { env: { ...process.env, PORT: "x" } }, (err, _o, stderr) =>
        resolve({ code: child.exitCode ?? (err as { code?: number })?.code ?? null, stderr }),
      );
    });
    assert.equal(out.code, 1);
    assert.equal(out.stderr.trim(), 'config: PORT must be an integer, got "x"');
  });
});

describe("config: CORS_ORIGINS", () => {
  it("allows no origin by default and takes an exact list", () => {
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.deepEqual(loadConfig({ CORS_ORIGINS: "https://app.example.com, http://localhost:5173" }).corsOrigins, ["https://app.example.com", "http://localhost:5173"]);
  });

  it("refuses *, null and anything that is not an origin, naming the variable", () => {
    for (const [value, message] of [
      ["*", /CORS_ORIGINS must list exact origins, not "\*"/],
      ["https://a.example.com,null", /CORS_ORIGINS must list exact origins, not "null"/],
      ["https://a.example.com/", /CORS_ORIGINS "https:\/\/a\.example\.com\/" is not an origin/],
      ["a.example.com", /CORS_ORIGINS "a\.example\.com" is not an origin/],
      ["ftp://a.example.com", /is not an origin/],
    ] as const) {
      assert.throws(() => loadConfig({ CORS_ORIGINS: value }), (e: Error) => e instanceof ConfigError && message.test(e.message), value);
    }
  });
});
