// Client side of the TLS tests (test/stack/tls.test.ts): an HTTPS call over HTTP/1.1
// or HTTP/2 (ALPN) trusting a given CA, a bare handshake with chosen TLS versions,
// plain HTTP with chosen headers, and grpcurl over TLS.
import { execFile } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { join } from "node:path";
import { ROOT, toolPath } from "../../scripts/tools/index.js";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The protocol ALPN chose ("h2", "http/1.1"); undefined over plain HTTP. */
  alpn?: string;
}

const HOST = "127.0.0.1";
/** The certificate names localhost, 127.0.0.1 and ::1; clients verify the name they dial. */
const portOf = (url: string) => Number(new URL(url).port);

/** HTTP/1.1 over TLS (ALPN http/1.1), trusting only ca. */
export function httpsCall(url: string, ca: Buffer, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: HOST, port: portOf(url), path: opts.path, method: opts.method ?? "GET", headers: opts.headers, ca,
      ALPNProtocols: ["http/1.1"], agent: false, timeout: 10_000,
    } as https.RequestOptions, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body, alpn: (res.socket as tls.TLSSocket).alpnProtocol || undefined }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** One GET over HTTP/2 negotiated by ALPN, trusting only ca. */
export function h2Get(url: string, ca: Buffer, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`https://${HOST}:${portOf(url)}`, { ca, ALPNProtocols: ["h2"] });
    c.on("error", reject);
    const r = c.request({ ":method": "GET", ":path": path });
    let headers: http2.IncomingHttpHeaders = {};
    let body = "";
    r.setEncoding("utf8");
    r.on("response", (h) => (headers = h));
    r.on("data", (d: string) => (body += d));
    r.on("error", reject);
    r.on("end", () => {
      const alpn = (c.socket as tls.TLSSocket).alpnProtocol || undefined;
      c.close();
      resolve({ status: Number(headers[":status"]), headers, body, alpn });
    });
    r.end();
  });
}

/** A plain HTTP/1.1 call with the headers given (a browser's navigation, an API client's GET). */
export function plainCall(url: string, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: portOf(url), path, method, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * A handshake limited to [min, max]: the negotiated version, or the error. SECLEVEL=0 lets
 * this client offer TLS 1.0/1.1 at all (OpenSSL 3 refuses them itself otherwise).
 */
export function handshake(url: string, ca: Buffer, minVersion: tls.SecureVersion, maxVersion: tls.SecureVersion): Promise<{ version?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: HOST, port: portOf(url), servername: "localhost", ca, minVersion, maxVersion, ciphers: "DEFAULT@SECLEVEL=0" });
    const timer = setTimeout(() => (s.destroy(), resolve({ error: "timeout" })), 10_000);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      const version = s.getProtocol() ?? undefined;
      s.end();
      resolve({ version });
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: err.code ?? err.message });
    });
  });
}

/** grpcurl over TLS trusting caFile (no -plaintext, no -insecure): its stdout, or the failure. */
export function grpcurlTls(url: string, caFile: string, flags: string[], verb: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(toolPath("grpcurl"), ["-cacert", caFile, ...flags, `${HOST}:${portOf(url)}`, verb],
      { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr }));
  });
}

export const PROTOSET = join(ROOT, "gen/api.binpb");

/** Connects and sends only `first` (or nothing): ms until the server closes the connection (-1: not within limitMs). */
export function stalledFor(url: string, limitMs: number, first?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const t = Date.now();
    const s = net.connect(portOf(url), HOST, () => { if (first) s.write(first); });
    const timer = setTimeout(() => (s.destroy(), resolve(-1)), limitMs);
    s.on("data", () => {});
    s.on("error", () => {});
    s.on("close", () => (clearTimeout(timer), resolve(Date.now() - t)));
  });
}
