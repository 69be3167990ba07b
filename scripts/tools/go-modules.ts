// The Go module of the foreign-client interop test (test/interop/go: grpc-go,
// protobuf and genproto pinned in go.mod and go.sum; protoc-gen-go and
// protoc-gen-go-grpc as `tool` directives). `npm run tools` downloads its
// modules into the module cache and compiles the two plugins and the client's
// dependencies into the build cache, so that test/interop/go.test.ts runs
// offline (GOPROXY=off) and in seconds. Both use goModuleEnv(): the build cache
// only helps when the environment (CGO_ENABLED above all) is the same.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./index.js";
import { goBinary } from "./install.js";

/** The module's folder (go.mod, go.sum, deps.go, client/). */
export const GO_INTEROP_MODULE = join(ROOT, "test/interop/go");

/** The protoc plugins, as named by go.mod's tool directives (`go tool <name>`). */
export const GO_PLUGINS = ["protoc-gen-go", "protoc-gen-go-grpc"] as const;

/** The modules named in the summary line. */
const PINNED = ["google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/grpc/cmd/protoc-gen-go-grpc"];

/**
 * The go command's environment for this module: no VCS stamping (the module
 * sits inside this repository), no go.work, a static client (CGO_ENABLED=0, so
 * no C compiler either). `offline` adds GOPROXY=off: a module missing from the
 * cache is then an error instead of a download.
 */
export function goModuleEnv(opts: { offline?: boolean } = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOFLAGS: "-buildvcs=false",
    GOWORK: "off",
    CGO_ENABLED: "0",
    ...(opts.offline ? { GOPROXY: "off" } : {}),
  };
}

/**
 * The Go toolchain (goBinary: /usr/local/go or the newest on PATH, not Debian's
 * 1.19), checked against go.mod's go line (grpc v1.85.0 needs Go 1.26), with an
 * error that says what to do.
 */
export function goForModules(): string {
  let goBin: string;
  try {
    goBin = goBinary();
  } catch (err) {
    throw new Error(`${(err as Error).message.replace(/^tools: installing \S+ needs/, "the Go interop module needs")}; then run \`npm run tools\``);
  }
  const want = /^go (\d+)\.(\d+)/m.exec(readFileSync(join(GO_INTEROP_MODULE, "go.mod"), "utf8"));
  const have = /^go(\d+)\.(\d+)/.exec(spawnSync(goBin, ["env", "GOVERSION"], { encoding: "utf8" }).stdout?.trim() ?? "");
  if (want && have && (Number(have[1]) < Number(want[1]) || (have[1] === want[1] && Number(have[2]) < Number(want[2])))) {
    throw new Error(`${GO_INTEROP_MODULE}/go.mod needs Go >= ${want[1]}.${want[2]}, ${goBin} is go${have[1]}.${have[2]}: install it, then run \`npm run tools\``);
  }
  return goBin;
}

function go(goBin: string, args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(goBin, args, { cwd: GO_INTEROP_MODULE, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`.trim().split("\n").slice(-15).join("\n");
    throw new Error(`go modules: \`${[goBin, ...args].join(" ")}\` (in ${GO_INTEROP_MODULE}) exited ${r.status ?? r.signal}\n${out}`);
  }
  return r.stdout;
}

/**
 * `go mod download` in test/interop/go, then builds the plugins (`go tool -n`
 * builds a tool into the build cache and prints its path) and vets deps.go,
 * which compiles the packages the client and its generated
 * stubs import. Quick when everything is cached. Throws an Error naming the failed
 * command. Returns one line, e.g. "go modules: google.golang.org/grpc v1.85.0, ...".
 */
export function downloadGoModules(log: (s: string) => void): string {
  const goBin = goForModules();
  const env = goModuleEnv();
  const started = Date.now();
  go(goBin, ["mod", "download"], env);
  for (const plugin of GO_PLUGINS) go(goBin, ["tool", "-n", plugin], env);
  // vet compiles every dependency (the build cache) and records vet's facts about each.
  go(goBin, ["vet", "."], env);
  const seconds = Math.round((Date.now() - started) / 1000);
  if (seconds >= 5) log(`go modules: downloaded and built in ${seconds} s`);
  const versions = go(goBin, ["list", "-m", "-f", "{{.Path}} {{.Version}}", ...PINNED], env).trim().split("\n");
  const goVersion = go(goBin, ["env", "GOVERSION"], env).trim();
  return `go modules: ${versions.join(", ")} (${goVersion}, ${goBin})`;
}
