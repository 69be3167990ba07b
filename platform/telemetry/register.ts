// Preload: starts OpenTelemetry before the application is imported.
//
//   node --import tsx --import ./platform/telemetry/register.ts app/main.ts [auth|user|order]
//
// With no OTLP endpoint configured this does nothing (see sdk.ts). A broken
// telemetry setup is reported once and the service starts without it.
import { startTelemetry } from "./sdk.js";

try {
  await startTelemetry();
} catch (err) {
  process.stderr.write(`telemetry: not started: ${(err as Error)?.message ?? err}\n`);
}
