// HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge) on one port, told apart by
// the HTTP/2 connection preface, as Envoy's `codec_type: AUTO` does.
import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Reads a new connection's first bytes and hands it to the HTTP/2 server (they are the
 * preface) or to the HTTP/1 one (they are not). A connection that sends nothing, or too
 * little to tell, is closed after headersTimeoutMs.
 */
export function handOverByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server, headersTimeoutMs: number): void {
  const stalled = setTimeout(() => socket.destroy(), headersTimeoutMs);
  socket.once("close", () => clearTimeout(stalled));
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    const n = Math.min(buf.length, PREFACE.length);
    const isH2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && buf.length < PREFACE.length) return; // need more bytes to decide
    socket.off("data", onData);
    clearTimeout(stalled);
    socket.pause();
    socket.unshift(buf);
    // http2 drains the unshifted bytes (readableLength) into its session and
    // then reads the handle directly: resuming would emit them to nobody.
    // http1 attaches a data listener and needs the stream flowing again.
    if (isH2) h2.emit("connection", socket);
    else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}
