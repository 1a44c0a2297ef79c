/**
 * `sealchat chat`: a small terminal client over SealClient. One line per event (time, room,
 * nick), a current room that plain text goes to (encrypted, or refused with the reason), and
 * slash commands from chat-commands.ts. Reads stdin line by line, so it also runs from a script.
 *
 * A lost connection is re-established (SealClient's reconnect, on by default): each step is one
 * line, and text typed meanwhile is held and sent under the room's next key, or reported as not
 * sent; the input loop never waits for it. When reconnecting stops (given up, or the login is
 * refused) the command ends with exit 1 and the reason.
 */
import readline from 'node:readline';
import { CliError, UsageError } from './util.js';
import { KEYBOT_NICK, casefold } from '../protocol/names.js';
import { sanitizeText } from '../crypto/sanitize.js';
import { parseAction } from '../protocol/ctcp.js';
import { SealClient, type ReconnectOptions } from '../client/client.js';
import { SealClientError } from '../client/errors.js';
import { chatHelp, parseChatInput, type ChatCommandName } from './chat-commands.js';
import { formatFingerprint } from '../protocol/fingerprint.js';
import { keyChangesSuffix, keybotPasswordProblem, knownServersFileFor, missingMessagesText } from '../client/index.js';
import { companionLogin, loginFailure } from './connect.js';
import { clock, serverCertificateNote } from './format.js';
import type { Values } from './keygen.js';
import { PASSPHRASE, PASSWORD, obtainSecret, secretSource, unlockKeyFile } from './secrets.js';

export interface ChatIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Text shown from outside sealchat's rooms (private messages, notices): no control characters. */
function shown(text: string): string {
  return sanitizeText(parseAction(text) ?? text).replace(/\x01/g, '');
}

/** Seconds, for the notices: "0.8 s", "12 s". */
function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

class Chat {
  private current: string | undefined;
  private quitting = false;
  private lost = false;
  /** Why the connection ended for good (reconnecting gave up, the login was refused). */
  private lostReason: string | undefined;
  /** Texts held by the client (id → what to echo once it is sent). */
  private readonly held = new Map<number, { room: string; text: string; action: boolean }>();
  private rl: readline.Interface | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly client: SealClient,
    private readonly me: string,
    private readonly io: ChatIo,
    private readonly where = 'the server',
  ) {
    this.tty = io.input.isTTY === true && io.output.isTTY === true;
  }

  print(line: string): void {
    const out = this.io.output;
    if (this.tty && this.rl) {
      readline.clearLine(out as NodeJS.WriteStream, 0);
      readline.cursorTo(out as NodeJS.WriteStream, 0);
      out.write(line + '\n');
      this.rl.prompt(true);
    } else {
      out.write(line + '\n');
    }
  }

  info(text: string): void {
    this.print(`${clock()} -!- ${text}`);
  }

  private setCurrent(room: string | undefined): void {
    this.current = room;
    this.rl?.setPrompt(room ? `${room}> ` : '> ');
  }

  /** Print what the client reports. */
  wire(): void {
    const c = this.client;
    c.on('keybot-pinned', (e) => {
      const how =
        e.source === 'first-use'
          ? 'trusted on first use: compare it with the fingerprint your administrator gives you'
          : e.source === 'known'
            ? 'as pinned before'
            : e.source === 'configured'
              ? 'it matches --keybot-fingerprint'
              : 'from --keybot-key';
      this.info(`keybot's key ${formatFingerprint(e.fingerprint)} is pinned (${how})`);
    });
    c.on('keybot-key-changed', (e) =>
      this.info(
        `WARNING: keybot's key changed! ${e.server} offered ${formatFingerprint(e.got)}, but ${e.source === 'configured' ? 'you configured' : 'you pinned'} ` +
          `${formatFingerprint(e.expected)}. It is refused: no room key will be accepted until you check the new key with the administrator.`,
      ),
    );
    c.on('keybot-unavailable', (e) => this.info(`${e.reason}; rooms get no keys until keybot's key is pinned`));
    c.on('key', (k) =>
      k.readOnly
        ? this.info(`older key for ${k.room}: epoch ${k.epoch} (missed while you were away), members ${k.members.join(', ')}; verified (signed by keybot); for reading history only`)
        : this.info(`key for ${k.room}: epoch ${k.epoch}, members ${k.members.join(', ')}; verified (signed by keybot)${keyChangesSuffix(k)}`),
    );
    c.on('warning', (w) => this.info(`warning: ${w.text}`));
    c.on('message', (m) => {
      if (m.missingBefore) this.print(`${clock()} ${m.room} -!- ${missingMessagesText(m.missingBefore, m.from, m.room)}`);
      // What was said while we were away: its own time, and marked.
      const at = m.history ? `${clock(new Date(m.time ?? Date.now()))} ${m.room} [history]` : `${clock()} ${m.room}`;
      this.print(m.action ? `${at} * ${m.from} ${m.text}` : `${at} <${m.from}> ${m.text}`);
    });
    c.on('history', (h) => this.info(`${h.room}: ${h.summary}`));
    c.on('plaintext-warning', (m) => this.print(`${clock()} ${m.room} <${m.from}> [NOT ENCRYPTED, NOT VERIFIED] ${m.text}`));
    c.on('undecryptable', (u) => this.info(`${u.room}: could not read a message from ${u.from}: ${u.reason}`));
    c.on('envelope-rejected', (e) => {
      // `/key` for a key we already hold: keybot re-sent it, nothing is wrong.
      if (e.code === 'not-newer' && e.room !== undefined && this.client.localRooms().some((r) => r.room === e.room && r.epoch === e.epoch)) {
        return this.info(`key for ${e.room}: epoch ${e.epoch} is the one already held`);
      }
      this.info(`refused a key envelope from ${e.from}: ${e.reason}`);
    });
    c.on('bot-notice', (n) => this.print(`${clock()} -${KEYBOT_NICK}${n.target.startsWith('#') ? ':' + n.target : ''}- ${n.text}`));
    c.on('notice', (n) => this.print(`${clock()} -${n.from || 'server'}- ${shown(n.text)}${n.from ? ' [not encrypted]' : ''}`));
    c.on('privmsg', (m) => {
      const where = m.target.startsWith('#') ? m.target + ' ' : '';
      const action = parseAction(m.text) !== undefined;
      this.print(`${clock()} ${where}${action ? `* ${m.from}` : `*${m.from}*`} ${shown(m.text)} [not encrypted]`);
    });
    c.on('join', (j) => {
      if (!j.self) return this.info(`${j.nick} joined ${j.room}`);
      this.info(`you are in ${j.room}`);
      if (this.current === undefined) {
        this.setCurrent(j.room);
        this.info(`now talking in ${j.room}`);
      }
    });
    c.on('part', (p) => {
      const why = p.kickedBy ? `removed by ${p.kickedBy}${p.reason ? `: ${p.reason}` : ''}` : p.reason;
      if (!p.self) return this.info(`${p.nick} left ${p.room}${why ? ` (${why})` : ''}`);
      this.info(`you left ${p.room}${why ? ` (${why})` : ''}`);
      if (this.current !== undefined && casefold(this.current) === casefold(p.room)) {
        const next = this.client.joinedRooms()[0];
        this.setCurrent(next);
        if (next) this.info(`now talking in ${next}`);
      }
    });
    c.on('quit', (q) => this.info(`${q.nick} quit${q.reason ? ` (${q.reason})` : ''}`));
    c.on('error', (err) => this.info(`error: ${err.message}`));
    c.on('disconnected', (d) => {
      if (d.reconnecting) return this.info(`lost the connection to ${this.where}; reconnecting (nothing is sent under the room keys until keybot sends them again; text you type is held)`);
      this.lostReason = d.reason;
      this.info(`disconnected from ${this.where}: ${d.reason}`);
    });
    c.on('reconnecting', (r) => this.info(`reconnecting to ${this.where} (attempt ${r.attempt}, in ${seconds(r.delayMs)})`));
    c.on('reconnected', (r) =>
      this.info(`reconnected to ${this.where} as ${r.nick}${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}; rooms come back as keybot sends their keys`),
    );
    c.on('message-held', (h) => this.info(`${h.room}: message held: ${h.reason}`));
    c.on('message-released', (r) => {
      const h = this.held.get(r.id);
      this.held.delete(r.id);
      this.info(`${r.room}: held message sent under epoch ${r.epoch} (after ${seconds(r.heldMs)})`);
      if (h) this.print(h.action ? `${clock()} ${h.room} * ${this.me} ${h.text}` : `${clock()} ${h.room} <${this.me}> ${h.text}`);
    });
    c.on('message-unsent', (u) => {
      const h = this.held.get(u.id);
      this.held.delete(u.id);
      this.info(`${u.room}: NOT SENT: ${u.reason}${h ? `: ${JSON.stringify(h.text)}` : ''}`);
    });
    c.on('close', () => {
      if (!this.quitting) {
        this.lost = true;
        if (this.lostReason === undefined) this.info(`disconnected from ${this.where}`);
      }
      this.rl?.close();
    });
  }

  /** Read lines until /quit, end of input or a lost connection. Resolves with the exit code. */
  async run(): Promise<number> {
    const rl = readline.createInterface({
      input: this.io.input,
      ...(this.tty ? { output: this.io.output, terminal: true } : { terminal: false }),
    });
    this.rl = rl;
    this.setCurrent(this.current);
    rl.on('SIGINT', () => rl.close());
    if (this.tty) rl.prompt();
    for await (const line of rl) {
      try {
        await this.handle(line);
      } catch (err) {
        this.info(err instanceof SealClientError ? err.message : `error: ${(err as Error).message}`);
      }
      if (this.quitting || this.lost) break;
      if (this.tty) rl.prompt();
    }
    rl.close();
    if (!this.lost && !this.quitting) {
      // End of input: let held text go out (or be given up) before leaving.
      if (this.held.size > 0) {
        this.info(`waiting for ${this.held.size} held message${this.held.size === 1 ? '' : 's'} to be sent or given up`);
        await new Promise<void>((resolve) => {
          const check = (): void => {
            if (this.held.size > 0 && !this.lost) return;
            clearInterval(timer);
            resolve();
          };
          const timer = setInterval(check, 100);
        });
      }
      if (!this.lost) {
        this.quitting = true;
        await this.client.quit('bye');
      }
    }
    if (this.lost) throw new CliError(`lost the connection to ${this.where}${this.lostReason ? `: ${this.lostReason}` : ''}`);
    return 0;
  }

  private async handle(line: string): Promise<void> {
    const input = parseChatInput(line);
    switch (input.kind) {
      case 'empty':
        return;
      case 'error':
        return this.info(input.message);
      case 'text':
        return this.say(this.current, input.text);
      case 'command':
        return this.commands[input.command.name](input.args, input.rest);
    }
  }

  private async say(room: string | undefined, text: string, action = false): Promise<void> {
    if (room === undefined) return this.info(`not sent: you are in no room; open one with /invite USER`);
    // send() reports a hold ('message-held') before it returns its promise: then the input loop
    // goes on, and 'message-released' / 'message-unsent' tell the rest.
    let heldId: number | undefined;
    const onHeld = (h: { id: number }): void => {
      heldId ??= h.id;
    };
    this.client.on('message-held', onHeld);
    let sent: Promise<unknown>;
    try {
      sent = action ? this.client.action(room, text) : this.client.send(room, text);
    } finally {
      this.client.off('message-held', onHeld);
    }
    if (heldId !== undefined) {
      this.held.set(heldId, { room, text, action });
      sent.catch(() => undefined);
      return;
    }
    try {
      await sent;
    } catch (err) {
      if (err instanceof SealClientError) return this.info(`not sent: ${err.message}`);
      throw err;
    }
    this.print(action ? `${clock()} ${room} * ${this.me} ${text}` : `${clock()} ${room} <${this.me}> ${text}`);
  }

  private roomArg(arg: string | undefined): string | undefined {
    const room = arg ?? this.current;
    if (room === undefined) this.info('which room? you are in none yet');
    return room;
  }

  /** After keybot reports a room, talk there (its JOIN may already be here). */
  private adopt(lines: string[]): void {
    for (const l of lines) {
      const m = /\b(?:opened|added \S+(?:, \S+)* to) (#\S+)/.exec(l);
      if (!m) continue;
      const room = this.client.joinedRooms().find((r) => casefold(r) === casefold(m[1]!)) ?? m[1]!;
      if (this.current === undefined || casefold(this.current) !== casefold(room)) {
        this.setCurrent(room);
        this.info(`now talking in ${room}`);
      }
      return;
    }
  }

  private async keybotSays(p: Promise<string[]>): Promise<string[]> {
    const lines = await p;
    if (lines.length === 0) this.info('keybot did not answer (is it running?)');
    return lines;
  }

  private readonly commands: Record<ChatCommandName, (args: string[], rest: string) => Promise<void> | void> = {
    help: ([name]) => {
      for (const l of chatHelp(name)) this.print(l);
    },
    invite: async (args) => {
      const lines = await this.keybotSays(args[0]!.startsWith('#') ? this.client.inviteTo(args[0]!, args.slice(1)) : this.client.invite(args));
      this.adopt(lines);
    },
    online: async () => {
      await this.keybotSays(this.client.online());
    },
    whois: async ([nick]) => {
      const w = await this.client.whois(nick!);
      if (w.error) return this.info(`${nick} is offline (or there is no such user)`);
      const where = w.channels ? `, in ${w.channels}` : '';
      const account = w.account ? `, account ${w.account}` : '';
      this.info(`${w.nick} is online: ${w.ident ?? '?'}@${w.hostname ?? '?'}${account}${where}`);
    },
    status: async ([user]) => {
      await this.keybotSays(this.client.status(user!));
    },
    rooms: async () => {
      await this.keybotSays(this.client.rooms());
      const local = this.client.localRooms();
      if (local.length === 0) return this.info('this client holds no room keys');
      for (const r of local) {
        this.info(r.hasKey ? `key held for ${r.room}: epoch ${r.epoch}, members ${r.members.join(', ')}` : `${r.room}: no key held (you left, or were removed)`);
      }
    },
    join: ([room]) => {
      const found = this.client.joinedRooms().find((r) => casefold(r) === casefold(room!));
      if (!found) {
        return this.info(`you are not in ${room}: rooms are invite-only; open one with /invite USER, or ask a member to /invite ${room} ${this.me}`);
      }
      this.setCurrent(found);
      this.info(`now talking in ${found}`);
    },
    leave: async ([arg]) => {
      const room = this.roomArg(arg);
      if (room !== undefined) await this.keybotSays(this.client.leave(room));
    },
    key: async ([arg]) => {
      const room = this.roomArg(arg);
      if (room !== undefined) await this.keybotSays(this.client.requestKey(room));
    },
    msg: async ([target], rest) => {
      const text = rest.slice(rest.indexOf(target!) + target!.length).replace(/^\s+/, '');
      if (casefold(target!) === KEYBOT_NICK) {
        this.adopt(await this.keybotSays(this.client.command(text)));
        return;
      }
      if (target!.startsWith('#')) return this.say(target, text);
      this.info(`not sent: private messages are not encrypted; open a room with /invite ${target}`);
    },
    me: (_args, rest) => this.say(this.current, rest, true),
    quit: async (_args, rest) => {
      this.quitting = true;
      await this.client.quit(rest || 'bye');
    },
  };
}

/** Run `sealchat chat`; resolves with the exit code once the session ends. */
export async function runChat(values: Values, _args: string[], io: ChatIo = { input: process.stdin, output: process.stdout }): Promise<number> {
  const own = values['keybot-account'] === true;
  if (own && values.sasl === true) throw new UsageError('give --sasl (a network with services) or --keybot-account (keybot keeps the accounts), not both');
  const { server, tls, user, keyFile, keybotFingerprint, keybotPublicKey } = await companionLogin(values);
  const privateKey = await unlockKeyFile(keyFile, secretSource(values, PASSPHRASE));
  const password = await obtainSecret(
    secretSource(values, PASSWORD),
    PASSWORD,
    own ? `keybot password for ${user} on ${server.host}:${server.port}: ` : `Password for ${user} on ${server.host}:${server.port}: `,
  );

  const badPassword = own ? keybotPasswordProblem(password) : undefined;
  if (badPassword !== undefined) throw new CliError(badPassword);

  let reconnect: false | ReconnectOptions = {};
  if (typeof values['reconnect-attempts'] === 'string') {
    const n = /^\d{1,6}$/.test(values['reconnect-attempts']) ? Number(values['reconnect-attempts']) : NaN;
    if (!Number.isInteger(n)) throw new UsageError(`--reconnect-attempts: "${values['reconnect-attempts']}" is not a number of attempts`);
    reconnect = n === 0 ? false : { maxAttempts: n };
  }

  const client = new SealClient();
  const where = `${server.host}:${server.port}`;
  const chat = new Chat(client, user, io, where);
  chat.wire();
  try {
    await client.connect({
      host: server.host,
      port: server.port,
      ...tls,
      rejectUnauthorized: values.insecure !== true,
      onServerCertificate: (decision, at) => {
        const note = serverCertificateNote(decision as { status: string; fingerprint?: string }, at, knownServersFileFor(undefined) || undefined);
        if (note) chat.info(note);
      },
      nick: user,
      // --sasl: the network's services account (SASL PLAIN), as networks with services want;
      // --keybot-account: no server password; the companion logs in to keybot (`login`) on every
      // connection (docs/NETWORKS.md, ngIRCd); else PASS, as sealchatd takes it.
      ...(own ? { keybotPassword: password } : values.sasl === true ? { sasl: { account: user, password } } : { password }),
      privateKey,
      ...(keybotFingerprint !== undefined ? { keybotFingerprint } : {}),
      ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
      reconnect,
    });
  } catch (err) {
    throw await loginFailure(err, server, user);
  }
  chat.info(`connected to ${where}${tls.tls ? ' (TLS)' : ''} as ${user}; /help lists the commands`);
  return chat.run();
}

