// A streamed response whose RPC ends with the stream: `done` runs once, when
// the stream finishes, fails or is closed early, and the handler's generator
// (which runs while the router pulls it) runs in the request's context.
import { context, type Context } from "@opentelemetry/api";
import { Code, ConnectError } from "@connectrpc/connect";
import { requestStore, type RequestInfo } from "./context.js";

export function tracedStream<T>(iterable: AsyncIterable<T>, ctx: Context, info: RequestInfo | undefined, done: (err?: unknown) => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = iterable[Symbol.asyncIterator]();
      let finished = false;
      const finish = (err?: unknown) => {
        if (finished) return;
        finished = true;
        done(err);
      };
      const inCtx = <R>(fn: () => R): R => context.with(ctx, () => (info ? requestStore.run(info, fn) : fn()));
      return {
        async next() {
          try {
            const r = await inCtx(() => it.next());
            if (r.done) finish();
            return r;
          } catch (err) {
            finish(err);
            throw err;
          }
        },
        async return(value?: unknown) {
          finish(new ConnectError("stream closed early", Code.Canceled));
          return (await it.return?.(value)) ?? { done: true as const, value: undefined as never };
        },
        async throw(e?: unknown) {
          finish(e);
          if (it.throw) return it.throw(e);
          throw e;
        },
      };
    },
  };
}
