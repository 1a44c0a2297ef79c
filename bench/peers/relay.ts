/**
 * The bare relay: the Node ceiling the daemon is measured against (issue 14). What a ~60-line
 * relay does and nothing else: a connection registers on NICK + USER (any PASS accepted), JOIN
 * adds it to a channel, and every PRIVMSG to a channel is queued to every other member. Output is
 * written once per connection per event-loop turn (what any Node server tuned for throughput
 * does; one write syscall per line and member costs ~5 us here, which would make the relay a
 * strawman). No accounts, modes, limits, throttles or tags.
 * `node --import tsx bench/peers/relay.ts` prints its port on stdout.
 */
import net from 'node:net';

interface Conn {
  socket: net.Socket;
  /** Output queued this turn, written at the end of it. */
  out: string[];
  nick: string;
  user: boolean;
  channels: Set<string>;
}

const channels = new Map<string, Set<Conn>>();
const dirty = new Set<Conn>();
let flushing = false;

function send(c: Conn, text: string): void {
  c.out.push(text);
  dirty.add(c);
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

function flush(): void {
  flushing = false;
  for (const c of dirty) {
    if (!c.socket.destroyed) c.socket.write(c.out.length === 1 ? c.out[0]! : c.out.join(''));
    c.out = [];
  }
  dirty.clear();
}

function line(c: Conn, text: string): void {
  const sp = text.indexOf(' ');
  const cmd = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
  const rest = sp < 0 ? '' : text.slice(sp + 1);
  if (cmd === 'PRIVMSG' || cmd === 'NOTICE') {
    const target = rest.slice(0, rest.indexOf(' ')).toLowerCase();
    const out = `:${c.nick}!${c.nick}@relay ${text}\r\n`;
    for (const m of channels.get(target) ?? []) if (m !== c) send(m, out);
  } else if (cmd === 'NICK') {
    c.nick = rest.replace(/^:/, '');
    if (c.user) welcome(c);
  } else if (cmd === 'USER') {
    c.user = true;
    if (c.nick) welcome(c);
  } else if (cmd === 'JOIN') {
    const name = rest.toLowerCase();
    let members = channels.get(name);
    if (!members) channels.set(name, (members = new Set()));
    members.add(c);
    c.channels.add(name);
    send(c, `:${c.nick}!${c.nick}@relay JOIN ${name}\r\n:relay 366 ${c.nick} ${name} :End of /NAMES list.\r\n`);
  } else if (cmd === 'PART') {
    const name = rest.split(' ')[0]!.toLowerCase();
    channels.get(name)?.delete(c);
    c.channels.delete(name);
    send(c, `:${c.nick}!${c.nick}@relay PART ${name}\r\n`);
  } else if (cmd === 'PING') {
    send(c, `:relay PONG relay ${rest}\r\n`);
  } else if (cmd === 'QUIT') {
    c.socket.end('ERROR :Closing link\r\n');
  }
}

function welcome(c: Conn): void {
  send(c, `:relay 001 ${c.nick} :Welcome\r\n:relay 376 ${c.nick} :End of MOTD\r\n`);
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const c: Conn = { socket, out: [], nick: '', user: false, channels: new Set() };
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buf += d;
    let start = 0;
    let i;
    while ((i = buf.indexOf('\n', start)) >= 0) {
      const text = buf.slice(start, buf[i - 1] === '\r' ? i - 1 : i);
      start = i + 1;
      if (text) line(c, text);
    }
    buf = buf.slice(start);
  });
  const gone = (): void => {
    for (const name of c.channels) channels.get(name)?.delete(c);
    c.channels.clear();
    dirty.delete(c);
  };
  socket.on('close', gone);
  socket.on('error', gone);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
