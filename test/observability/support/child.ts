// Run the product (or a fixture) in a child process with the telemetry
// preload, as production does: the OpenTelemetry SDK is process-global and
// must start before pg/ioredis are imported, so tests that need a real
// exporter cannot share the mocha process.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const PRELOAD = ["--import", "tsx", "--import", "./platform/telemetry/register.ts"];

/** process.env without OTEL_* (so the parent's settings do not leak in) plus `env`. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTEL_")));
  return { ...base, ...env };
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a script to completion. */
export function runScript(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...PRELOAD, script], { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningProduct {
  readonly url: string;
  /** The /metrics listener's base URL, from the banner (throws before it is printed). */
  metricsUrl(): string;
  readonly child: ChildProcess;
  /** Every stdout line so far (JSON log lines and the banner). */
  readonly lines: string[];
  readonly stderr: () => string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** SIGTERM, wait for exit (the process flushes its spans first). */
  stop(): Promise<number | null>;
}

/** `app/main.ts [args]` with the preload, on a random port; resolves once it listens. */
export function startProduct(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<RunningProduct> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...PRELOAD, "app/main.ts", ...args], {
      cwd: ROOT,
      env: childEnv({ PORT: "0", HOST: "127.0.0.1", ...env }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: string[] = [];
    let stderr = "";
    let partial = "";
    let started = false;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`app/main.ts did not listen in ${timeoutMs} ms\n${lines.join("\n")}\n${stderr}`));
    }, timeoutMs);
    child.stderr.on("data", (c) => (stderr += c));
    child.stdout.on("data", (c: Buffer) => {
      partial += c.toString("utf8");
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        const m = /listening on (http:\/\/\S+)/.exec(line);
        if (m && !started) {
          started = true;
          clearTimeout(timer);
          const url = m[1].replace("localhost", "127.0.0.1");
          resolve({
            url,
            metricsUrl: () => {
              const found = lines.map((l) => /metrics \(.*\): (http:\/\/\S+)\/metrics/.exec(l)).find(Boolean);
              if (!found) throw new Error("no metrics listener in the banner");
              return found[1];
            },
            child,
            lines,
            stderr: () => stderr,
            logs: () =>
              lines.flatMap((l) => {
                if (!l.startsWith("{")) return [];
                try {
                  return [JSON.parse(l) as Record<string, unknown>];
                } catch {
                  return [];
                }
              }),
            stop: async () => {
              if (child.exitCode === null) child.kill("SIGTERM");
              return exited;
            },
          });
        }
      }
    });
    child.once("exit", (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`app/main.ts exited with ${code} before listening\n${lines.join("\n")}\n${stderr}`));
      }
    });
  });
}
