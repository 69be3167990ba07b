// Traces read back from Jaeger's HTTP query API (the v1 JSON API, which Jaeger
// v2 still serves on its query port): parsed with each span's service and
// parent, its ancestors, and a tree to print when an assertion fails.

/** A span of Jaeger's JSON, with its service and parent resolved. */
export interface Span {
  traceId: string;
  id: string;
  /** CHILD_OF reference (Jaeger's JSON; FOLLOWS_FROM is not used here). */
  parentId?: string;
  service: string;
  op: string;
  kind?: string;
  start: number;
  tags: Record<string, unknown>;
}

export interface Trace {
  traceId: string;
  spans: Span[];
  byId: Map<string, Span>;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export function parseTrace(t: any): Trace {
  const spans: Span[] = (t.spans as any[]).map((s) => {
    const tags = Object.fromEntries((s.tags as any[] ?? []).map((x) => [x.key, x.value]));
    const parent = (s.references as any[] ?? []).find((r) => r.refType === "CHILD_OF");
    return {
      traceId: s.traceID,
      id: s.spanID,
      parentId: parent?.spanID,
      service: t.processes[s.processID]?.serviceName ?? "?",
      op: s.operationName,
      kind: tags["span.kind"] as string | undefined,
      start: s.startTime,
      tags,
    };
  });
  return { traceId: t.traceID, spans, byId: new Map(spans.map((s) => [s.id, s])) };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** The span and its ancestors present in the trace, nearest first. */
export function ancestors(tr: Trace, s: Span): Span[] {
  const out: Span[] = [];
  for (let p = s.parentId && tr.byId.get(s.parentId); p && out.length < 100; p = p.parentId && tr.byId.get(p.parentId)) out.push(p);
  return out;
}

/** One line per span, as a tree (children by start time): service, operation, kind, parent operation. */
export function render(tr: Trace): string {
  const children = new Map<string | undefined, Span[]>();
  for (const s of tr.spans) {
    const key = s.parentId && tr.byId.has(s.parentId) ? s.parentId : undefined;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  const lines: string[] = [`trace ${tr.traceId} (${tr.spans.length} spans)`];
  const walk = (parent: string | undefined, depth: number) => {
    for (const s of (children.get(parent) ?? []).sort((a, b) => a.start - b.start)) {
      const p = s.parentId ? (tr.byId.get(s.parentId)?.op ?? `(not in trace: ${s.parentId})`) : "(root)";
      lines.push(`${"  ".repeat(depth + 1)}${s.service.padEnd(10)} ${s.op} [${s.kind ?? "?"}] <- ${p}`);
      walk(s.id, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join("\n");
}

/** GET a Jaeger query API path (undefined on 404). */
export async function jaegerGet(jaegerUrl: string, path: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await fetch(jaegerUrl + path, { signal: AbortSignal.timeout(5000) });
  if (r.status === 404) return undefined;
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** The trace with this id, as Jaeger has it now. */
export async function traceById(jaegerUrl: string, traceId: string): Promise<Trace | undefined> {
  const body = await jaegerGet(jaegerUrl, `/api/traces/${traceId}`);
  return body?.data?.[0] ? parseTrace(body.data[0]) : undefined;
}
