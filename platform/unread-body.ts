// HTTP/1.1 keep-alive: what is left of a request body once its answer is written.
import type http from "node:http";
import type net from "node:net";

/**
 * Node discards a body nobody started reading (req._dump), but not one whose reader
 * stopped midway: connect's gRPC handler answers after the first message and drops
 * (destroys) the request stream, a REST body reader stops at a bad gzip byte. Node's
 * parser then pushes the rest of the body into a request nobody reads, stops reading
 * the socket when that push is refused, and the next request on the connection is
 * never read: the client waits for an answer that never comes. Here the request is
 * marked dumped, as node's own _dump does (its parser then drops the body bytes
 * instead of pushing them), and the socket reads on; a body still unfinished after
 * the request timeout (requestTimeoutMs) closes the connection.
 */
export function discardUnreadBody(req: http.IncomingMessage, socket: net.Socket, requestTimeoutMs: number): void {
  if (req.complete || socket.destroyed) return;
  const incoming = req as { _dumped?: boolean };
  if (!incoming._dumped) {
    incoming._dumped = true;
    // Unless node paused it itself (pipelined answers waiting to be written).
    if (!(socket as { _paused?: boolean })._paused) socket.resume();
  }
  setTimeout(() => {
    if (!req.complete) socket.destroy();
  }, requestTimeoutMs).unref();
}
