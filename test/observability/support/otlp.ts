// An in-process OTLP/HTTP receiver for tests: accepts what the SDK's exporter
// sends to <url>/v1/traces (protobuf, as Jaeger receives it; JSON accepted
// too) and decodes it with the generated OTLP protobuf types that
// @opentelemetry/otlp-transformer 0.215 ships (installed under the alias
// otlp-transformer-generated; the current transformer only encodes).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const root: any = require("otlp-transformer-generated/build/src/generated/root.js");
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ExportTraceServiceResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export type AttrValue = string | number | boolean | AttrValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  service: string;
  scope: string;
  attributes: Record<string, AttrValue>;
  status: { code: number; message: string };
  events: { name: string; attributes: Record<string, AttrValue> }[];
  startNs: bigint;
  endNs: bigint;
}

const hex = (b: Uint8Array | undefined) => (b && b.length ? Buffer.from(b).toString("hex") : "");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function value(v: any): AttrValue {
  if (!v) return undefined;
  if (v.stringValue != null) return v.stringValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.intValue != null) return Number(v.intValue);
  if (v.doubleValue != null) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function attrs(list: any[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Requests that were not protobuf/JSON trace exports (e.g. metrics, logs). */
  readonly other: string[];
  /** Wait until `pred` holds over the received spans (polls), or throw after timeoutMs. */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const other: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        other.push(`${req.method} ${req.url}`);
        res.writeHead(404).end();
        return;
      }
      try {
        const type = String(req.headers["content-type"] ?? "");
        const msg = type.includes("json")
          ? ExportTraceServiceRequest.fromObject(JSON.parse(body.toString("utf8")))
          : ExportTraceServiceRequest.decode(body);
        for (const rs of msg.resourceSpans ?? []) {
          const service = String(attrs(rs.resource?.attributes)["service.name"] ?? "");
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: hex(s.traceId),
                spanId: hex(s.spanId),
                parentSpanId: hex(s.parentSpanId),
                name: s.name,
                kind: s.kind,
                service,
                scope: ss.scope?.name ?? "",
                attributes: attrs(s.attributes),
                status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
                events: (s.events ?? []).map((e: { name: string; attributes?: unknown[] }) => ({ name: e.name, attributes: attrs(e.attributes) })),
                startNs: BigInt(String(s.startTimeUnixNano ?? 0)),
                endNs: BigInt(String(s.endTimeUnixNano ?? 0)),
              });
            }
          }
        }
        const reply = ExportTraceServiceResponse.encode(ExportTraceServiceResponse.create({})).finish();
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end(Buffer.from(reply));
      } catch (err) {
        other.push(`undecodable: ${(err as Error).message}`);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    other,
    async waitFor(pred, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (!pred(spans)) {
        if (Date.now() > until) {
          throw new Error(`timed out waiting for spans; got ${spans.length}: ${spans.map((s) => s.name).join(", ")}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return spans;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The spans of one trace as an indented tree (for failure messages). */
export function renderTree(spans: ReceivedSpan[]): string {
  const byParent = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const list = byParent.get(s.parentSpanId) ?? [];
    list.push(s);
    byParent.set(s.parentSpanId, list);
  }
  const ids = new Set(spans.map((s) => s.spanId));
  const lines: string[] = [];
  const walk = (s: ReceivedSpan, depth: number) => {
    const kind = Object.entries(SpanKind).find(([, v]) => v === s.kind)?.[0] ?? s.kind;
    lines.push(`${"  ".repeat(depth)}${s.name} [${kind}]${s.status.code === StatusCode.ERROR ? " ERROR" : ""}`);
    for (const c of (byParent.get(s.spanId) ?? []).sort((a, b) => Number(a.startNs - b.startNs))) walk(c, depth + 1);
  };
  for (const r of spans.filter((s) => !ids.has(s.parentSpanId)).sort((a, b) => Number(a.startNs - b.startNs))) walk(r, 0);
  return lines.join("\n");
}
