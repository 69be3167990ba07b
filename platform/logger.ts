// Structured logs: one JSON object per line (level, time, service, msg, and
// fields such as trace_id, rpc method, code, duration). Human-readable when
// stdout is a terminal. Secrets never reach a log line: fields named like
// secrets are dropped and emails are masked.
export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const SECRET = /pass(word)?|secret|token|authorization|cookie|hash|private|jwt/i;

/** "alice@example.com" -> "a***@example.com" */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "***";
  return `${email[0]}***${email.slice(at)}`;
}

function clean(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (SECRET.test(k)) continue;
    if (/email/i.test(k) && typeof v === "string") out[k] = maskEmail(v);
    else if (v instanceof Error) out[k] = { name: v.name, message: v.message };
    else out[k] = v;
  }
  return out;
}

export interface LoggerOptions {
  level?: Level;
  pretty?: boolean;
  write?: (line: string) => void;
  /** Extra fields computed per line (e.g. the active trace id). */
  context?: () => Fields;
}

let globalContext: (() => Fields) | undefined;

/**
 * Fields added to every line of every logger, computed per line (the active
 * trace_id, span_id and request_id: see platform/telemetry/context.ts). Fields
 * given to the call win over them.
 */
export function setLogContext(provider: (() => Fields) | undefined): void {
  globalContext = provider;
}

export function createLogger(base: Fields, opts: LoggerOptions = {}): Logger {
  const min = order[opts.level ?? "info"];
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  const write = opts.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const make = (bound: Fields): Logger => {
    const log = (level: Level, msg: string, fields: Fields = {}) => {
      if (order[level] < min) return;
      const rec = { level, time: new Date().toISOString(), ...bound, ...globalContext?.(), ...opts.context?.(), msg, ...clean(fields) };
      if (pretty) {
        const { level: l, time, msg: m, service, ...rest } = rec as Fields;
        const extra = Object.keys(rest).length ? " " + JSON.stringify(rest) : "";
        write(`${String(time).slice(11, 23)} ${String(l).toUpperCase().padEnd(5)} [${service ?? "-"}] ${m}${extra}`);
      } else {
        write(JSON.stringify(rec));
      }
    };
    return {
      debug: (m, f) => log("debug", m, f),
      info: (m, f) => log("info", m, f),
      warn: (m, f) => log("warn", m, f),
      error: (m, f) => log("error", m, f),
      child: (f) => make({ ...bound, ...clean(f) }),
    };
  };
  return make(clean(base));
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({}, { write: () => {} });
