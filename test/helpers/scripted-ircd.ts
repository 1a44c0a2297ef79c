/**
 * A scripted IRC server for the plugin tests: enough of registration (CAP LS, PASS, NICK, USER,
 * the welcome numerics), JOIN and PING for irssi and WeeChat, and then whatever line the test
 * pushes to the client. It records every line the client sent (the WireTap shape, so
 * `sendMarker` works with it): what the plugin let through is exactly what reached the server.
 */
import net from 'node:net';
import { waitSentLine } from './poll.js';
import type { WireTap } from './wiretap.js';

const NAME = 'irc.scripted.test';

export interface ScriptedIrcd extends WireTap {
  /** Send a raw line to the (last) connected client. */
  push(line: string): void;
  /** The client's nick once it registered. */
  readonly nick: string | undefined;
}

export async function startScriptedIrcd(): Promise<ScriptedIrcd> {
  const sent: string[] = [];
  const sockets = new Set<net.Socket>();
  let current: net.Socket | undefined;
  let nick: string | undefined;

  const server = net.createServer((s) => {
    sockets.add(s);
    current = s;
    let buf = '';
    let user = false;
    let capOpen = false;
    let welcomed = false;
    const write = (line: string): void => {
      if (!s.destroyed) s.write(`${line}\r\n`);
    };
    const welcome = (): void => {
      if (welcomed || !nick || !user || capOpen) return;
      welcomed = true;
      write(`:${NAME} 001 ${nick} :Welcome to the scripted IRC network, ${nick}`);
      write(`:${NAME} 002 ${nick} :Your host is ${NAME}`);
      write(`:${NAME} 003 ${nick} :This server was created for a test`);
      write(`:${NAME} 004 ${nick} ${NAME} scripted-1 io ov`);
      write(`:${NAME} 005 ${nick} CASEMAPPING=ascii CHANTYPES=# PREFIX=(ov)@+ STATUSMSG=@+ :are supported by this server`);
      write(`:${NAME} 422 ${nick} :MOTD File is missing`);
    };
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        sent.push(line);
        const [command = '', ...params] = line.split(' ');
        switch (command.toUpperCase()) {
          case 'CAP':
            if (/^LS/i.test(params[0] ?? '')) {
              capOpen = true;
              write(`:${NAME} CAP * LS :`);
            } else if (/^REQ/i.test(params[0] ?? '')) {
              write(`:${NAME} CAP * NAK :${line.split(' :')[1] ?? ''}`);
            } else if (/^END/i.test(params[0] ?? '')) {
              capOpen = false;
              welcome();
            }
            break;
          case 'NICK':
            nick = (params[0] ?? '').replace(/^:/, '');
            welcome();
            break;
          case 'USER':
            user = true;
            welcome();
            break;
          case 'JOIN':
            for (const room of (params[0] ?? '').replace(/^:/, '').split(',')) {
              if (room === '' || !nick) continue;
              write(`:${nick}!${nick}@127.0.0.1 JOIN :${room}`);
              write(`:${NAME} 353 ${nick} = ${room} :${nick} bob`);
              write(`:${NAME} 366 ${nick} ${room} :End of /NAMES list`);
            }
            break;
          case 'PING':
            write(`:${NAME} PONG ${NAME} :${line.slice(line.indexOf(' ') + 1).replace(/^:/, '')}`);
            break;
          case 'QUIT':
            s.end();
            break;
        }
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sent,
    get nick() {
      return nick;
    },
    push(line: string) {
      current?.write(`${line}\r\n`);
    },
    waitSent: (re, what, from, ms) => waitSentLine(sent, re, what, from, ms),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
