// Reading a REST request body: its content coding (none or gzip) and the bytes,
// bounded so that neither a large body nor a decompression bomb gets past max.
import zlib from "node:zlib";
import type { NodeRequest } from "../platform/http-types.js";
import { headerValue } from "./headers.js";

export type BodyEncoding = "identity" | "gzip";

/** Content codings a REST body may have: none, or gzip (inflated with a bound, below). */
export function bodyEncoding(req: NodeRequest): BodyEncoding | undefined {
  const raw = headerValue(req, "content-encoding");
  const codings = (raw ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  if (codings.length === 0) return "identity";
  if (codings.length === 1 && (codings[0] === "gzip" || codings[0] === "x-gzip")) return "gzip";
  return undefined;
}

/** The body is not valid gzip (a 400). */
export class BadGzip extends Error {}

/**
 * The request body, or undefined when it exceeds max bytes. A gzip body is
 * inflated as it arrives and both its compressed and its inflated size are
 * bounded by max: a decompression bomb stops at max bytes of output.
 * Rejects with BadGzip when the body is not valid gzip, with an Error when the
 * client goes away before the end of the body.
 */
export function readBody(req: NodeRequest, max: number, encoding: BodyEncoding = "identity"): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    // Small output chunks: the bound is checked every 16 KiB of inflated bytes.
    const gunzip = encoding === "gzip" ? zlib.createGunzip({ chunkSize: 16 * 1024 }) : undefined;
    const chunks: Buffer[] = [];
    let read = 0;
    let kept = 0;
    let ended = false;
    let done = false;
    const finish = (err: Error | undefined, value?: Uint8Array) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      gunzip?.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const overMax = () => {
      req.pause();
      finish(undefined, undefined);
    };
    /** Bytes of the body as the handler sees it: the request's own, or inflated ones. */
    const keep = (bytes: Buffer) => {
      kept += bytes.length;
      if (kept > max) overMax();
      else chunks.push(bytes);
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > max) return overMax();
      if (!gunzip) return keep(chunk);
      // Backpressure: the client's bytes wait while the inflated ones are taken.
      if (!gunzip.write(chunk)) {
        req.pause();
        gunzip.once("drain", () => !done && req.resume());
      }
    };
    const onEnd = () => {
      ended = true;
      if (gunzip) gunzip.end();
      else finish(undefined, Buffer.concat(chunks));
    };
    const onError = (err: Error) => finish(err);
    // After the request's end, a gzip body may still be inflating: its own end finishes.
    const onClose = () => {
      if (!ended) finish(new Error("client closed the request"));
    };
    if (gunzip) {
      gunzip.on("data", keep);
      gunzip.on("end", () => finish(undefined, Buffer.concat(chunks)));
      gunzip.on("error", (err) => finish(new BadGzip(`The body is not valid gzip: ${err.message}`)));
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
