// A TCP proxy on loopback between a client under test and a server, which can
// hold what the client sends (it is buffered, not forwarded) while the server's
// side still flows: a consumer then receives a delivery and acts on it, but its
// ack never reaches the broker. When the client's connection ends, the server's
// is destroyed at once and whatever was held is dropped, as a crash would.
import net from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Stop forwarding client -> server (buffered until release()). */
  hold(): void;
  /** Forward again, held bytes first. */
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let holding = false;
  const pairs = new Set<{ client: net.Socket; server: net.Socket; held: Buffer[] }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair = { client, server: upstream, held: [] as Buffer[] };
    pairs.add(pair);
    client.on("data", (d: Buffer) => (holding ? pair.held.push(d) : upstream.write(d)));
    upstream.on("data", (d: Buffer) => client.write(d));
    const end = () => {
      pairs.delete(pair);
      pair.held = [];
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => void (holding = true),
    release() {
      holding = false;
      for (const p of pairs) for (const d of p.held.splice(0)) p.server.write(d);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs) {
          p.client.destroy();
          p.server.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
