// OpenTelemetry in the mocha process, exporting to memory: a tracer provider,
// the AsyncLocalStorage context manager and the W3C propagator, registered as
// the globals the product's interceptors use. uninstall() puts the no-op API back.
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";

export interface MemoryTracing {
  readonly exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  /** Spans of one trace. */
  trace(traceId: string): ReadableSpan[];
  reset(): void;
  uninstall(): Promise<void>;
}

export function installMemoryTracing(): MemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const cm = new AsyncLocalStorageContextManager().enable();
  trace.disable();
  context.disable();
  propagation.disable();
  if (!trace.setGlobalTracerProvider(provider)) throw new Error("tracer provider already set");
  context.setGlobalContextManager(cm);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    trace: (id) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === id),
    reset: () => exporter.reset(),
    uninstall: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Parent span id of a span (sdk 2.x: parentSpanContext). */
export function parentOf(s: ReadableSpan): string | undefined {
  return s.parentSpanContext?.spanId;
}
