// `npm run generate`: TypeScript stubs (buf generate, see buf.gen.yaml) and the
// descriptor set gen/api.binpb that Envoy's grpc_json_transcoder and the
// embedded edge load. With `--out DIR` it writes DIR/gen instead of ./gen (the
// freshness check in the test command compares the two).
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const outIdx = process.argv.indexOf("--out");
const outBase = outIdx > 0 ? process.argv[outIdx + 1] : root;
const buf = join(root, "node_modules/.bin/buf");

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return name.endsWith(".proto") ? [relative(root, path)] : [];
  });
}

const env = { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` };
const run = (args: string[]) => execFileSync(buf, args, { cwd: root, env, stdio: "inherit" });
run(["generate", "-o", outBase]);
mkdirSync(join(outBase, "gen"), { recursive: true });
run([
  "build",
  ".",
  ...protoFiles(join(root, "proto")).flatMap((f) => ["--path", f]),
  // convert_grpc_status needs google.rpc.Status in the descriptor set, and every
  // detail type the services send (google.rpc.BadRequest, RetryInfo, ...) to print
  // them: without them Envoy answers a service error with an empty body.
  "--path",
  "node_modules/google-proto-files/google/rpc/status.proto",
  "--path",
  "node_modules/google-proto-files/google/rpc/error_details.proto",
  "-o",
  join(outBase, "gen/api.binpb"),
]);
// OpenAPI 3.1 of the REST routes, from the descriptor set just built
// (imported late: scripts/openapi.ts loads ./gen, which buf generate rewrites).
const { writeOpenApi } = await import("./openapi.js");
writeOpenApi(join(outBase, "gen/api.binpb"), join(outBase, "gen/openapi.json"));
// Envoy's config follows the contract too. A separate process, so it loads the
// gen/ files just written rather than the ones this process started with.
if (outIdx < 0) {
  execFileSync(process.execPath, ["--import", "tsx", join(root, "scripts/envoy-config.ts")], { cwd: root, stdio: "inherit" });
}
