// `npm run tools`: install the pinned external programs (scripts/tools/versions.json)
// into the tools cache, or check they are there and print their versions.
//   npm run tools                     install what is missing, print every version
//   npm run tools -- envoy jaeger     only these
// Quick when everything is installed (one version check each). A failure names
// the tool and the command that failed, leaves nothing half-installed, exits 1.
import { toolSpecs, toolsDir, type ToolName } from "./tools/index.js";
import { downloadGoModules } from "./tools/go-modules.js";
import { install, InstallError } from "./tools/install.js";

const specs = toolSpecs();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-")) as ToolName[];
const unknown = wanted.filter((n) => !(n in specs));
if (unknown.length) {
  console.error(`tools: unknown tool "${unknown[0]}"; expected one of: ${Object.keys(specs).join(", ")}`);
  process.exit(2);
}
const names = wanted.length ? wanted : (Object.keys(specs) as ToolName[]);
console.log(`tools: ${toolsDir()}`);
for (const name of names) {
  try {
    const line = install(name, specs[name], (s) => console.log(s));
    console.log(`tools: ${name.padEnd(11)} ${line}`);
  } catch (err) {
    console.error(err instanceof InstallError ? err.message : err);
    process.exit(1);
  }
}
// The Go client's modules (test/interop/go/go.mod), when every tool is wanted.
if (!wanted.length) {
  try {
    console.log(`tools: ${downloadGoModules((s) => console.log(s))}`);
  } catch (err) {
    console.error(`tools: ${(err as Error).message}`);
    process.exit(1);
  }
}
