// The external programs the real edge runs with, pinned in versions.json and
// installed by `npm run tools` into a git-ignored cache (.cache/tools, or
// ACME_TOOLS_DIR). Each tool lives in a folder named after its version that
// appears only once the tool is installed and answered its version check, so a
// half-finished install is never trusted: it is staged in "<folder>.partial"
// and renamed at the end.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export type ToolName = "envoy" | "ratelimit" | "jaeger" | "mailpit" | "grpcurl" | "python-grpc" | "schemathesis";

export interface ToolSpec {
  version: string;
  /** PyPI requirements, installed into a venv in the tool's folder. */
  pypi?: string[];
  /** `go install <module@version>` with GOBIN in the tool's folder. */
  go_install?: string;
  /**
   * A folder of this repo with a package.json and lockfile that build the module's web UI:
   * the module's source is copied, `npm ci` and `npm run build` run in it, then `go build`
   * (Mailpit: its module has the UI's sources but not the built files it embeds).
   */
  npm_ui?: string;
  /** -ldflags for go install (grpcurl learns its version this way, as its release build does). */
  ldflags?: string;
  /** A Go program whose module needs `go get -tool` (replace directives), then `go build`. */
  go_tool?: string;
  /** The container image of the same version (docker-compose.yml). */
  image?: string;
}

export const VERSIONS_FILE = join(ROOT, "scripts/tools/versions.json");

export function toolSpecs(): Record<ToolName, ToolSpec> {
  const raw = JSON.parse(readFileSync(VERSIONS_FILE, "utf8")) as Record<string, unknown>;
  delete raw.$comment;
  return raw as Record<ToolName, ToolSpec>;
}

export const toolsDir = (env = process.env) => env.ACME_TOOLS_DIR || join(ROOT, ".cache/tools");

/** A tool's folder: its name and version ("-ui" when its web UI is built too, so an older build without it is not taken for it). */
export const toolDir = (name: ToolName, spec: ToolSpec = toolSpecs()[name]) => join(toolsDir(), `${name}-${spec.version}${spec.npm_ui ? "-ui" : ""}`);

/** The executable a tool provides, relative to its folder. */
const EXECUTABLES: Record<ToolName, string> = {
  envoy: "bin/envoy",
  ratelimit: "bin/ratelimit",
  jaeger: "bin/jaeger",
  mailpit: "bin/mailpit",
  grpcurl: "bin/grpcurl",
  "python-grpc": "venv/bin/python",
  // Run as `venv/bin/python -m schemathesis.cli` (the venv's own `st` script names the staging folder).
  schemathesis: "venv/bin/python",
};

export const executableOf = (name: ToolName) => EXECUTABLES[name];

/** Path of an installed tool's executable; a clear error when it is not installed. */
export function toolPath(name: ToolName): string {
  const spec = toolSpecs()[name];
  const path = join(toolDir(name, spec), EXECUTABLES[name]);
  if (!existsSync(path)) {
    throw new Error(`${name} ${spec.version} is not installed (${path} missing): run \`npm run tools\``);
  }
  return path;
}
