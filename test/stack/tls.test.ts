// HTTPS at both edges (docs/tls.md): Envoy's HTTPS listener with the local CA the stack
// made at its first start, and the embedded edge given TLS_CERT_FILE/TLS_KEY_FILE. Over
// TLS: REST over HTTP/1.1 and HTTP/2 (ALPN), a gRPC call with grpcurl -cacert, HSTS on
// every answer (upstream and the edge's own), TLS 1.0/1.1 refused. Envoy's plain port:
// browser navigations redirected to https, API calls served as before, never HSTS.
import { strict as assert } from "node:assert";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HSTS } from "../../edge/headers.js";
import { loadConfig } from "../../platform/config.js";
import { loadTlsMaterial } from "../../platform/tls.js";
import { ensureLocalCertificates } from "../../scripts/stack/certs.js";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { grpcurlTls, h2Get, handshake, httpsCall, plainCall, PROTOSET, stalledFor } from "./tls-client.js";

const HSTS_HEADER = "strict-transport-security";
const BROWSER = { "upgrade-insecure-requests": "1", accept: "text/html,application/xhtml+xml,*/*;q=0.8" };

/** A server that does accept TLS 1.0/1.1: shows the client below can speak them, so a refusal is the edge's. */
async function oldTlsServer(ca: { cert: string; key: string }): Promise<{ url: string; close(): void }> {
  const server = tls.createServer({ cert: readFileSync(ca.cert), key: readFileSync(ca.key), minVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
}

async function login(edge: string, ca: Buffer, email: string, password: string): Promise<string> {
  const r = await httpsCall(edge, ca, {
    method: "POST", path: "/v1/auth/login", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }),
  });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).tokens.accessToken;
}

/** The first bytes of a TLS ClientHello record, and then nothing. */
const HALF_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50]);

/** What both edges must do over TLS. */
function overTls(edge: () => { url: string; caFile: string; ca: Buffer; admin: { email: string; password: string }; grpcFlags: string[]; headersTimeoutMs: number }) {
  it("closes a connection that does not finish its handshake within the headers timeout", async () => {
    const { url, headersTimeoutMs } = edge();
    const [silent, half] = await Promise.all([stalledFor(url, headersTimeoutMs + 5000), stalledFor(url, headersTimeoutMs + 5000, HALF_HELLO)]);
    for (const [what, ms] of [["nothing sent", silent], ["half a ClientHello", half]] as const) {
      assert.ok(ms >= headersTimeoutMs - 100 && ms <= headersTimeoutMs + 2000, `${what}: closed after ${ms} ms, want ~${headersTimeoutMs}`);
    }
  });

  it("answers REST over TLS 1.2+ (HTTP/1.1 and HTTP/2 by ALPN), trusting the local CA, with HSTS on every answer", async () => {
    const { url, ca } = edge();
    const jwks = await httpsCall(url, ca, { path: "/.well-known/jwks.json" });
    assert.equal(jwks.status, 200, jwks.body);
    assert.ok(JSON.parse(jwks.body).keys.length > 0);
    assert.equal(jwks.alpn, "http/1.1");
    assert.equal(jwks.headers[HSTS_HEADER], HSTS);
    const h2 = await h2Get(url, ca, "/.well-known/jwks.json");
    assert.equal(h2.status, 200, h2.body);
    assert.equal(h2.alpn, "h2");
    assert.equal(h2.headers[HSTS_HEADER], HSTS);
    // The edge's own refusal (no token) carries it too.
    const refused = await httpsCall(url, ca, { path: "/v1/users/me" });
    assert.equal(refused.status, 401, refused.body);
    assert.equal(JSON.parse(refused.body).code, 16);
    assert.equal(refused.headers[HSTS_HEADER], HSTS);
  });

  it("refuses a client that trusts another CA", async () => {
    const { url } = edge();
    const other = mkdtempSync(join(tmpdir(), "acme-other-ca-"));
    try {
      const otherCa = readFileSync(ensureLocalCertificates(join(other, "tls")).ca);
      await assert.rejects(httpsCall(url, otherCa, { path: "/.well-known/jwks.json" }), /self.signed|unable to verify|certificate/i);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("serves a gRPC call over TLS (grpcurl -cacert, ALPN h2)", async () => {
    const { url, caFile, ca, admin, grpcFlags } = edge();
    const token = await login(url, ca, admin.email, admin.password);
    const me = await grpcurlTls(url, caFile, [...grpcFlags, "-H", `authorization: Bearer ${token}`], "acme.user.v1.UserService/GetMe");
    assert.equal(me.code, 0, me.stderr);
    assert.equal(JSON.parse(me.stdout).user?.email, admin.email, me.stdout);
  });

  it("refuses TLS 1.0 and 1.1 at the handshake, accepts 1.2 and 1.3", async () => {
    const { url, ca } = edge();
    const control = await oldTlsServer({ cert: join(dirOf(edge().caFile), "server.crt"), key: join(dirOf(edge().caFile), "server.key") });
    try {
      assert.equal((await handshake(control.url, ca, "TLSv1.1", "TLSv1.1")).version, "TLSv1.1", "the client can speak TLS 1.1");
      assert.equal((await handshake(control.url, ca, "TLSv1", "TLSv1")).version, "TLSv1", "the client can speak TLS 1.0");
    } finally {
      control.close();
    }
    for (const v of ["TLSv1", "TLSv1.1"] as const) {
      const r = await handshake(url, ca, v, v);
      assert.equal(r.version, undefined, `${v} was accepted`);
      assert.match(String(r.error), /ALERT_PROTOCOL_VERSION/, "the edge answers a protocol_version alert");
    }
    assert.equal((await handshake(url, ca, "TLSv1.2", "TLSv1.2")).version, "TLSv1.2");
    assert.equal((await handshake(url, ca, "TLSv1.3", "TLSv1.3")).version, "TLSv1.3");
  });
}

const dirOf = (file: string) => file.slice(0, file.lastIndexOf("/"));

describe("HTTPS at both edges", function () {
  this.timeout(120_000);

  describe("Envoy (npm run stack): the HTTPS listener", () => {
    let stack: EdgeStack;
    before(async () => { stack = await sharedEdgeStack(); });
    overTls(() => ({
      url: stack.tlsEdgeUrl, caFile: stack.caFile, ca: readFileSync(stack.caFile), admin: stack.admin, grpcFlags: ["-protoset", PROTOSET],
      headersTimeoutMs: Number(stack.settings.connection_limits.headers_timeout.replace(/s$/, "")) * 1000,
    }));

    it("made the CA and certificate in the stack's dir at its start: SANs localhost, 127.0.0.1", () => {
      const cert = new X509Certificate(readFileSync(join(dirOf(stack.caFile), "server.crt")));
      assert.match(String(cert.subjectAltName), /DNS:localhost/);
      assert.match(String(cert.subjectAltName), /IP Address:127\.0\.0\.1/);
      assert.ok(cert.verify(new X509Certificate(readFileSync(stack.caFile)).publicKey));
    });

    it("plain port: a browser navigation is redirected to https (301), API calls are served as before, never HSTS", async () => {
      const tlsPort = new URL(stack.tlsEdgeUrl).port;
      const nav = await plainCall(stack.edgeUrl, "/v1/users/me?x=1", { ...BROWSER, host: `localhost:${stack.ports.envoy}` });
      assert.equal(nav.status, 301, nav.body);
      assert.equal(nav.headers.location, `https://localhost:${tlsPort}/v1/users/me?x=1`);
      assert.equal(nav.headers[HSTS_HEADER], undefined);
      const head = await plainCall(stack.edgeUrl, "/openapi.json", BROWSER, "HEAD");
      assert.equal(head.status, 301);
      assert.equal(head.headers.location, `https://127.0.0.1:${tlsPort}/openapi.json`);
      // API clients (no Upgrade-Insecure-Requests) keep plain HTTP, without HSTS.
      const api = await plainCall(stack.edgeUrl, "/.well-known/jwks.json");
      assert.equal(api.status, 200, api.body);
      assert.equal(api.headers[HSTS_HEADER], undefined);
      const refused = await plainCall(stack.edgeUrl, "/v1/users/me");
      assert.equal(refused.status, 401);
      assert.equal(refused.headers[HSTS_HEADER], undefined);
      // A POST is never redirected (a redirect would lose the body with 301).
      const post = await plainCall(stack.edgeUrl, "/v1/auth/login", BROWSER, "POST");
      assert.notEqual(post.status, 301);
    });
  });

  describe("embedded edge (npm start) with TLS_CERT_FILE and TLS_KEY_FILE", () => {
    let sys: TestSystem;
    let plain: TestSystem;
    let dir: string;
    let caFile: string;
    const admin = { email: "tls-admin@example.com", password: "tls-admin-password-1" };
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "acme-tls-"));
      const files = ensureLocalCertificates(join(dir, "tls"));
      caFile = files.ca;
      const env = { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password };
      sys = await startTestSystem({ env: { ...env, TLS_CERT_FILE: files.cert, TLS_KEY_FILE: files.key, SERVER_HEADERS_TIMEOUT_MS: "1500" } });
      plain = await startTestSystem({ env });
    });
    after(async () => {
      await sys?.stop();
      await plain?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    overTls(() => ({ url: sys.system.url, caFile, ca: readFileSync(caFile), admin, grpcFlags: [], headersTimeoutMs: 1500 }));

    it("says https in its URL; without a certificate, plain HTTP and no HSTS", async () => {
      assert.match(sys.system.url, /^https:\/\//);
      assert.match(plain.system.url, /^http:\/\//);
      const r = await plainCall(plain.system.url, "/.well-known/jwks.json");
      assert.equal(r.status, 200);
      assert.equal(r.headers[HSTS_HEADER], undefined);
    });

    it("TLS_CERT_FILE and TLS_KEY_FILE go together, readable, a matching pair: else the start stops naming the variable", () => {
      assert.throws(() => loadConfig({ TLS_CERT_FILE: "/x.crt" }), /TLS_KEY_FILE/);
      assert.throws(() => loadConfig({ TLS_KEY_FILE: "/x.key" }), /TLS_CERT_FILE/);
      assert.throws(() => loadTlsMaterial({ certFile: join(dir, "missing.crt"), keyFile: join(dir, "tls/server.key") }), /TLS_CERT_FILE cannot be read/);
      // The CA's certificate with the server's key: not a pair.
      assert.throws(() => loadTlsMaterial({ certFile: caFile, keyFile: join(dir, "tls/server.key") }), /TLS_CERT_FILE and TLS_KEY_FILE are not a matching/);
    });
  });
});
