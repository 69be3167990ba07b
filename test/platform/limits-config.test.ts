// The message, header and JSON limits come from the environment with safe
// defaults (README "Limits"); a bad value stops the start naming the variable.
import { strict as assert } from "node:assert";
import { ConfigError, loadConfig } from "../../platform/config.js";

describe("platform: message and header limits from the environment", () => {
  it("defaults: 4 MiB messages, 100 headers, 16 KiB of headers, JSON 64 deep", () => {
    const { limits } = loadConfig({});
    assert.equal(limits.maxMessageBytes, 4 * 1024 * 1024);
    assert.equal(limits.maxHeaderCount, 100);
    assert.equal(limits.maxHeaderBytes, 16 * 1024);
    assert.equal(limits.maxJsonDepth, 64);
  });

  it("takes MAX_MESSAGE_BYTES, SERVER_MAX_HEADER_COUNT, SERVER_MAX_HEADER_BYTES and MAX_JSON_DEPTH", () => {
    const { limits } = loadConfig({ MAX_MESSAGE_BYTES: "65536", SERVER_MAX_HEADER_COUNT: "50", SERVER_MAX_HEADER_BYTES: "8192", MAX_JSON_DEPTH: "16" });
    assert.deepEqual([limits.maxMessageBytes, limits.maxHeaderCount, limits.maxHeaderBytes, limits.maxJsonDepth], [65536, 50, 8192, 16]);
  });

  it("refuses values out of range or not integers, naming the variable", () => {
    for (const [name, value] of [
      ["MAX_MESSAGE_BYTES", "0"],
      ["MAX_MESSAGE_BYTES", "1e9"],
      ["SERVER_MAX_HEADER_COUNT", "100000"],
      ["SERVER_MAX_HEADER_BYTES", "10"],
      ["MAX_JSON_DEPTH", "deep"],
    ]) {
      assert.throws(() => loadConfig({ [name]: value }), (e: unknown) => e instanceof ConfigError && e.variable === name, `${name}=${value}`);
    }
  });
});
