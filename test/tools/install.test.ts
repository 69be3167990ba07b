// `npm run tools`: what it installed answers its version check, and a tool that
// cannot be fetched fails with its name and the command, leaving nothing behind
// that a later run would trust.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolDir, toolPath, toolSpecs, type ToolName } from "../../scripts/tools/index.js";

const ROOT = new URL("../..", import.meta.url).pathname;

function tools(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "scripts/tools.ts", ...args], { cwd: ROOT, env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe("npm run tools", function () {
  this.timeout(180_000);

  it("has every pinned tool installed, each answering its version check with the pinned version", async () => {
    const r = await tools([], process.env);
    assert.equal(r.code, 0, r.out);
    const specs = toolSpecs();
    for (const name of Object.keys(specs) as ToolName[]) {
      assert.ok(existsSync(toolPath(name)), name);
      assert.ok(toolDir(name).endsWith(`${name}-${specs[name].version}${specs[name].npm_ui ? "-ui" : ""}`), toolDir(name));
    }
    assert.match(r.out, /envoy\s+envoy [0-9a-f]{40}\/1\.40\.0\//);
    assert.match(r.out, /jaeger\s+jaeger v2\.13\.0 \(module v1\.76\.0\)/);
    assert.match(r.out, /grpcurl\s+grpcurl v1\.9\.3/);
    assert.match(r.out, /ratelimit\s+ratelimit v1\.4\.1-0\.20260122083618-3fb702589d36/);
    assert.match(r.out, /python-grpc\s+grpcio 1\.85\.1/);
    assert.match(r.out, /schemathesis\s+schemathesis 4\.32\.5/);
    assert.match(r.out, /go modules: google\.golang\.org\/grpc v1\.85\.0/);
  });

  it("names the tool and the failed command, exits 1 and leaves nothing when a download fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "acme-tools-"));
    try {
      const r = await tools(["grpcurl"], { ...process.env, ACME_TOOLS_DIR: dir, GOPROXY: "off", GOFLAGS: "-mod=mod", GOMODCACHE: join(dir, "empty-modcache") });
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /tools: installing grpcurl failed: `\S*go install .*github\.com\/fullstorydev\/grpcurl\/cmd\/grpcurl@v1\.9\.3` exited 1/);
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith("grpcurl")), [], "no grpcurl folder, finished or partial");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an unknown tool name", async () => {
    const r = await tools(["envoyy"], process.env);
    assert.equal(r.code, 2);
    assert.match(r.out, /unknown tool "envoyy"; expected one of: envoy, ratelimit, jaeger, grpcurl, python-grpc, schemathesis/);
  });
});
