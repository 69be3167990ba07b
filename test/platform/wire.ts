// Raw wire calls for tests that send what no well-behaved client would: one
// HTTP/2 request with chosen headers and bytes, gRPC frames built by hand, and
// the answer's status, headers, trailers and body as received.
import http2 from "node:http2";
import zlib from "node:zlib";

export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a new HTTP/2 (h2c) connection, closed after the answer. */
export function h2Call(base: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined, timeoutMs = 15_000): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to ${path} in ${timeoutMs} ms`));
    }, timeoutMs);
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = h;
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (err) => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    });
    stream.on("close", () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, headers: head, trailers, body: Buffer.concat(chunks) });
    });
    stream.end(body);
  });
}

/** A gRPC / gRPC-Web length-prefixed message; `compressed` sets the flag only (the bytes are sent as given). */
export function grpcFrame(bytes: Uint8Array, compressed = false): Buffer {
  const b = Buffer.alloc(5 + bytes.length);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(bytes.length, 1);
  b.set(bytes, 5);
  return b;
}

/** grpc-status of an answer: trailers, or headers for a trailers-only answer. */
export const grpcStatus = (a: H2Answer) => Number(a.trailers["grpc-status"] ?? a.headers["grpc-status"]);
export const grpcMessage = (a: H2Answer) => decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? ""));

/** The status and message of a gRPC-Web answer: the trailer frame (flag 0x80) at the end of the body, or the headers. */
export function grpcWebStatus(a: H2Answer | { headers: Record<string, string | string[] | undefined>; body: Buffer }): { code: number; message: string } {
  let i = 0;
  const b = a.body;
  while (i + 5 <= b.length) {
    const len = b.readUInt32BE(i + 1);
    if (b[i] & 0x80) {
      const text = b.subarray(i + 5, i + 5 + len).toString("latin1");
      const get = (k: string) => new RegExp(`^${k}:\\s*(.*?)\\r?$`, "mi").exec(text)?.[1] ?? "";
      return { code: Number(get("grpc-status")), message: decodeURIComponent(get("grpc-message")) };
    }
    i += 5 + len;
  }
  return { code: Number(a.headers["grpc-status"]), message: decodeURIComponent(String(a.headers["grpc-message"] ?? "")) };
}

/** gzip of 1 GiB of zeros (about 1 MB), streamed: never 1 GiB in this process (about 3 s). */
export async function makeBomb(): Promise<Buffer> {
  const gz = zlib.createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on("data", (c: Buffer) => out.push(c));
  const mib = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 1024; i++) if (!gz.write(mib)) await new Promise((r) => gz.once("drain", r));
  const ended = new Promise((r) => gz.once("end", r));
  gz.end();
  await ended;
  return Buffer.concat(out);
}
