// The stalled clients of stalled.test.ts, in a process of their own (so that their
// sockets do not slow down the measuring client): opens PER_KIND connections of each
// kind in batches of 100, each sending its first bytes (if any) and then nothing, and
// prints one JSON line once the server has closed them all: per kind, ms from opening
// to close (-1: never opened).
//   node stalled-clients.mjs PORT PER_KIND '[["kind", "first bytes" | null], ...]'
import net from "node:net";

const [port, perKind, kinds] = [Number(process.argv[2]), Number(process.argv[3]), JSON.parse(process.argv[4])];

const open = {};
setInterval(() => console.error(`still open: ${JSON.stringify(open)}`), 5000).unref();

function stall(kind, first) {
  return new Promise((resolve) => {
    const opened = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    open[kind] = (open[kind] ?? 0) + 1;
    const closed = new Promise((r) => socket.once("close", () => (open[kind]--, r(Date.now() - opened))));
    socket.once("connect", () => {
      if (first) socket.write(first);
      socket.resume(); // read and drop what the server says (a 408, a GOAWAY)
      resolve({ closed }); // wrapped: resolving with the promise itself would wait for it
    });
    socket.once("close", () => resolve({ closed: Promise.resolve(-1) }));
  });
}

async function main() {
  const t0 = Date.now();
  const all = {};
  for (const [kind, first] of kinds) {
    all[kind] = [];
    for (let i = 0; i < perKind; i += 100) all[kind].push(...(await Promise.all(Array.from({ length: 100 }, () => stall(kind, first)))));
  }
  const openedIn = Date.now() - t0;
  const closedAfter = {};
  for (const kind of Object.keys(all)) closedAfter[kind] = await Promise.all(all[kind].map((c) => c.closed));
  process.stdout.write(`${JSON.stringify({ openedIn, closedAfter })}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
