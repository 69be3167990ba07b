// The local certificate authority and the edge's server certificate, made with the
// openssl CLI at the first start into <dir> and reused after (`npm run stack` into
// STACK_DIR/tls; docker compose's tls-init job into the acme-tls volume):
//   ca.crt      the local CA (P-256, 10 years): give it to clients (curl --cacert, grpcurl -cacert)
//   server.crt  the edge's certificate, signed by the CA, SANs localhost, 127.0.0.1, ::1 (825 days;
//               made again from the same CA when under 30 days remain)
//   server.key  its private key
// The CA's own key (ca.key) stays in <dir> to sign the renewals. Nothing is committed.
//   node --import tsx scripts/stack/certs.ts <dir> [--shared-key]
// --shared-key leaves server.key readable by every user (mode 0444) for another container's
// user (Envoy's) to read it from a volume only the two share; 0600 otherwise.
import { execFileSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface LocalCertificates {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export const SERVER_NAMES = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"] as const;
const RENEW_WITHIN_MS = 30 * 24 * 3600 * 1000;

const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
const serial = () => `0x${randomBytes(16).toString("hex").replace(/^[89a-f]/, "1")}`;
const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string): void {
  openssl([
    "req", "-x509", "-new", ...ecKey, "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"),
    "-days", "3650", "-set_serial", serial(), "-subj", "/O=acme/CN=acme local CA",
    "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  chmodSync(join(dir, "ca.key"), 0o600);
}

function makeServer(dir: string, keyMode: number): void {
  const csr = join(dir, "server.csr");
  const ext = join(dir, "server.ext");
  writeFileSync(ext, [
    `subjectAltName=${SERVER_NAMES.join(",")}`,
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "",
  ].join("\n"));
  openssl(["req", "-new", ...ecKey, "-keyout", join(dir, "server.key"), "-out", csr, "-subj", "/O=acme/CN=localhost"]);
  openssl([
    "x509", "-req", "-in", csr, "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"),
    "-set_serial", serial(), "-days", "825", "-sha256", "-extfile", ext, "-out", join(dir, "server.crt"),
  ]);
  rmSync(csr);
  rmSync(ext);
  chmodSync(join(dir, "server.key"), keyMode);
}

const expiresSoon = (certFile: string) =>
  new Date(new X509Certificate(readFileSync(certFile)).validTo).getTime() - Date.now() < RENEW_WITHIN_MS;

/** The CA and server certificate in dir: made when missing (or the server's about to expire), kept otherwise. */
export function ensureLocalCertificates(dir: string, opts: { sharedKey?: boolean } = {}): LocalCertificates {
  const files = { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
  const keyMode = opts.sharedKey ? 0o444 : 0o600;
  if (!existsSync(files.ca) || !existsSync(join(dir, "ca.key"))) {
    // Made whole in a directory inside (dir may be a volume's mount point), then moved in with
    // ca.crt last: an interrupted first start leaves no ca.crt, so the next start makes all again.
    const tmp = join(dir, `.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    makeCa(tmp);
    makeServer(tmp, keyMode);
    for (const f of ["server.key", "server.crt", "ca.key", "ca.crt"]) renameSync(join(tmp, f), join(dir, f));
    rmSync(tmp, { recursive: true, force: true });
  } else if (!existsSync(files.cert) || !existsSync(files.key) || expiresSoon(files.cert)) {
    makeServer(dir, keyMode);
  }
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node --import tsx scripts/stack/certs.ts <dir> [--shared-key]");
    process.exit(2);
  }
  const files = ensureLocalCertificates(resolve(dir), { sharedKey: process.argv.includes("--shared-key") });
  console.log(`tls: CA ${files.ca}, server certificate ${files.cert}`);
}
