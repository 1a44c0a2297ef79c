/**
 * Helpers for SealClient tests: waiting for typed events, and a scripted stand-in for keybot
 * (a plain irc-framework client logged in with the service account's credentials), so the
 * client can be tested on its own against the real daemon.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import type { SealClient, SealClientEvents } from '../../src/client/client.js';
import { KEYBOT_CREDENTIALS_FILE } from '../../src/protocol/files.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { connectClient, type TestDaemon } from '../helpers/daemon.js';
import { envelopeLines, type EnvelopeSpec, type Party } from './fixtures.js';

/** Wait for a SealClient event whose argument satisfies `pred`. */
export function next<K extends keyof SealClientEvents>(
  client: SealClient,
  event: K,
  pred: (...args: SealClientEvents[K]) => boolean = () => true,
  ms = 8000,
): Promise<SealClientEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(event, on);
      reject(new Error(`${client.nick}: timed out waiting for ${String(event)}`));
    }, ms);
    const on = (...args: SealClientEvents[K]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      client.off(event, on);
      resolve(args[0]);
    };
    client.on(event, on);
  });
}

/** Collect every emission of `event` into an array (for "never happened" checks). */
export function record<K extends keyof SealClientEvents>(client: SealClient, event: K): Array<SealClientEvents[K][0]> {
  const seen: Array<SealClientEvents[K][0]> = [];
  client.on(event, (...args: SealClientEvents[K]) => seen.push(args[0]));
  return seen;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A scripted keybot: logs in as the service, answers `pubkey` and canned commands, sends envelopes. */
export class FakeKeybot {
  readonly commands: Array<{ from: string; text: string }> = [];

  private constructor(
    readonly irc: IrcClient,
    readonly control: ControlClient,
    readonly key: Party,
    readonly replies: Record<string, string[]>,
  ) {
    irc.on('privmsg', (e: { nick: string; target: string; message: string }) => {
      if (e.target.toLowerCase() !== 'keybot') return;
      this.commands.push({ from: e.nick, text: e.message });
      if (e.message === 'pubkey' && replies.pubkey === undefined) {
        for (const line of key.publicArmored.split('\n')) if (line.trim() !== '') irc.notice(e.nick, line);
        return;
      }
      for (const line of replies[e.message] ?? [`unknown command "${e.message}"; send "help" for the list`]) irc.notice(e.nick, line);
    });
  }

  static async start(t: TestDaemon, key: Party, replies: Record<string, string[]> = {}): Promise<FakeKeybot> {
    const creds = JSON.parse(await readFile(path.join(t.dataDir, KEYBOT_CREDENTIALS_FILE), 'utf8')) as { password: string };
    // Control first: once keybot registers, clients that MONITOR it ask for its key at once.
    const control = await ControlClient.connect(t.daemon.controlPath);
    const irc = await connectClient(t.port, { nick: 'keybot', password: creds.password });
    return new FakeKeybot(irc, control, key, replies);
  }

  /** Server-side join, as keybot places members. */
  async place(room: string, nick: string): Promise<void> {
    await this.control.call('channel.join', { channel: room, nick });
  }

  async kick(room: string, nick: string, reason = 'left (via keybot)'): Promise<void> {
    await this.control.call('channel.kick', { channel: room, nick, reason });
  }

  /** Seal and send one envelope (as NOTICEs, like keybot). */
  async sendEnvelope(spec: Omit<EnvelopeSpec, 'signer'> & { signer?: Pick<Party, 'priv'> }, nick = spec.to.name): Promise<void> {
    for (const line of await envelopeLines({ signer: this.key, ...spec })) this.irc.notice(nick, line);
  }

  stop(): void {
    this.irc.quit();
    this.control.close();
  }
}
