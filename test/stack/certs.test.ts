// The stack's local CA and server certificate (scripts/stack/certs.ts): made once,
// reused on the next start, the server certificate made again from the same CA when
// it is about to expire.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureLocalCertificates } from "../../scripts/stack/certs.js";

describe("stack: local CA and server certificate", () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "acme-certs-")); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const read = (f: string) => readFileSync(join(dir, f), "utf8");

  it("made at the first start (key private, SANs localhost and 127.0.0.1), the same files after", () => {
    const files = ensureLocalCertificates(dir);
    const cert = new X509Certificate(readFileSync(files.cert));
    assert.ok(cert.verify(new X509Certificate(readFileSync(files.ca)).publicKey), "signed by the CA");
    assert.equal(cert.ca, false);
    assert.match(String(cert.subjectAltName), /DNS:localhost/);
    assert.match(String(cert.subjectAltName), /IP Address:127\.0\.0\.1/);
    assert.equal(statSync(files.key).mode & 0o777, 0o600);
    const before = ["ca.crt", "ca.key", "server.crt", "server.key"].map(read);
    ensureLocalCertificates(dir);
    assert.deepEqual(["ca.crt", "ca.key", "server.crt", "server.key"].map(read), before);
  });

  it("a server certificate about to expire is made again from the same CA", () => {
    const files = ensureLocalCertificates(dir);
    const ca = read("ca.crt");
    // Replace it with one that expires tomorrow, from the same CA.
    execFileSync("openssl", ["req", "-new", "-key", files.key, "-subj", "/CN=localhost", "-out", join(dir, "short.csr")], { stdio: "pipe" });
    execFileSync("openssl", ["x509", "-req", "-in", join(dir, "short.csr"), "-CA", files.ca, "-CAkey", join(dir, "ca.key"), "-set_serial", "7", "-days", "1", "-out", files.cert], { stdio: "pipe" });
    const short = read("server.crt");
    ensureLocalCertificates(dir);
    assert.notEqual(read("server.crt"), short);
    assert.equal(read("ca.crt"), ca, "the CA clients trust stays");
    const renewed = new X509Certificate(readFileSync(files.cert));
    assert.ok(new Date(renewed.validTo).getTime() - Date.now() > 800 * 24 * 3600 * 1000);
    assert.ok(renewed.verify(new X509Certificate(readFileSync(files.ca)).publicKey));
  });
});
