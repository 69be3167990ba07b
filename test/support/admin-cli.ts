// `npm run admin` as a user runs it: scripts/admin.ts in a child process with a
// minimal environment plus `env`, `stdin` written to it (a password), its exit
// code and output.
import { spawn } from "node:child_process";

const root = new URL("../..", import.meta.url).pathname;

export function runAdmin(args: string[], env: Record<string, string>, stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const base: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", BCRYPT_COST: "10", LOG_LEVEL: "error" };
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/admin.ts", ...args], { cwd: root, env: { ...base, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
