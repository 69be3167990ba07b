// TLS on the port (platform/server.ts), when the process is given a certificate
// (TLS_CERT_FILE and TLS_KEY_FILE, platform/config.ts): TLS 1.2 and 1.3 only, ALPN
// h2 and http/1.1. The decrypted connection then goes the way a plain one does
// (HTTP/2 or HTTP/1.1 told apart by the connection preface). docs/tls.md.
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { ConfigError } from "./config.js";

/** PEM certificate chain and private key. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads the certificate and key once, at start; a missing or unreadable file names its variable. */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (variable: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(variable, `cannot be read (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const material = { cert: read("TLS_CERT_FILE", files.certFile), key: read("TLS_KEY_FILE", files.keyFile) };
  try {
    tls.createSecureContext(material);
  } catch (err) {
    throw new ConfigError("TLS_CERT_FILE", `and TLS_KEY_FILE are not a matching PEM certificate and key: ${(err as Error).message}`);
  }
  return material;
}

export const TLS_MIN_VERSION = "TLSv1.2" as const;
export const ALPN_PROTOCOLS = ["h2", "http/1.1"];

/**
 * The listening server: plain TCP, or TLS when given a certificate. onSocket gets the
 * connection once it carries HTTP (after the handshake under TLS); a handshake must
 * finish within handshakeTimeoutMs.
 */
export function createListener(material: TlsMaterial | undefined, handshakeTimeoutMs: number, onSocket: (socket: net.Socket) => void): net.Server {
  if (!material) return net.createServer(onSocket);
  const server = tls.createServer(
    { ...material, minVersion: TLS_MIN_VERSION, ALPNProtocols: ALPN_PROTOCOLS, handshakeTimeout: handshakeTimeoutMs },
    onSocket,
  );
  // A failed or timed-out handshake: Node reports it here but leaves the connection open
  // (a client that sends nothing would hold it forever); close it.
  server.on("tlsClientError", (_err, socket) => socket.destroy());
  return server;
}
