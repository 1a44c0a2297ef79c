/**
 * A transparent TCP relay between a client and the daemon that records every line the client
 * sends: what reached the server, whoever else could or could not have received it. Bound to
 * port 0; point the client at `port`.
 *
 * "Sent nothing" checks use it with a marker: `mark()` makes the client send `PING :<token>`
 * (through `send`, e.g. a real client's `/quote`), and once the tap has seen it, every line the
 * client sent before has been recorded.
 */
import net from 'node:net';
import { waitSentLine } from './poll.js';

export interface WireTap {
  port: number;
  /** Lines the client sent, in order, across all its connections (CRLF removed). */
  readonly sent: string[];
  /** Wait for a sent line matching `re` at index >= `from`; returns its index. */
  waitSent(re: RegExp, what: string, from?: number, ms?: number): Promise<number>;
  close(): Promise<void>;
}

/** The relay of {@link startWireTap}: it can also play a network that goes out. */
export interface RelayTap extends WireTap {
  /** Cut every connection through the tap now (a lost network): the tap still takes new ones... */
  cut(): void;
  /** ...unless it is down: while down, a new connection is closed at once (the network is still out). */
  down: boolean;
  /** Set to change what reaches the server: each line the client sends (CRLF removed) is replaced by what this returns. */
  rewriteUp?: (line: string) => string;
  /** The same for what reaches the client: each line the server sends is replaced by what this returns (null: dropped). */
  rewriteDown?: (line: string) => string | null;
}

let markers = 0;

/** A fresh marker token: `PING :<token>` is the raw line to have the client send. */
export function markerToken(): string {
  return `tapmark${process.pid}x${++markers}`;
}

export async function startWireTap(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<RelayTap> {
  const sent: string[] = [];
  const sockets = new Set<net.Socket>();
  let tap: RelayTap;
  const server = net.createServer((client) => {
    if (tap.down) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: upstreamHost, port: upstreamPort });
    sockets.add(client).add(upstream);
    let buf = '';
    client.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        const raw = buf.slice(0, i + 1);
        const line = Buffer.from(raw.replace(/\r?\n$/, ''), 'latin1').toString('utf8');
        sent.push(line);
        buf = buf.slice(i + 1);
        // Whole lines go on as they came (bytes unchanged), or as the test rewrote them.
        upstream.write(tap.rewriteUp ? `${tap.rewriteUp(line)}\r\n` : Buffer.from(raw, 'latin1'));
      }
    });
    let down = '';
    upstream.on('data', (d: Buffer) => {
      if (!tap.rewriteDown) return void client.write(d);
      down += d.toString('latin1');
      let i: number;
      while ((i = down.indexOf('\n')) !== -1) {
        const line = Buffer.from(down.slice(0, i).replace(/\r$/, ''), 'latin1').toString('utf8');
        down = down.slice(i + 1);
        const out = tap.rewriteDown(line);
        if (out !== null) client.write(`${out}\r\n`);
      }
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  tap = {
    port,
    sent,
    down: false,
    waitSent: (re, what, from, ms) => waitSentLine(sent, re, what, from, ms),
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return tap;
}

/** Something that can type a command into a real client (RealClient.send). */
interface Typist {
  send(text: string): Promise<void>;
}

/**
 * Have a real client send a marker (`/quote PING :<token>`) and wait until the tap has it; returns
 * its index in `tap.sent`, so `tap.sent.slice(from, index)` is everything the client sent between.
 */
export async function sendMarker(tap: WireTap, client: Typist, from = 0): Promise<number> {
  const token = markerToken();
  await client.send(`/quote PING :${token}`);
  return tap.waitSent(new RegExp(`^PING :?${token}$`), `the marker PING ${token}`, from);
}
