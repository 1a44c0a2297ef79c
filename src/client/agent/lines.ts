/**
 * Raw IRC lines as a protocol-3 plugin hands them over (`line` requests): read with the one IRC
 * parser (src/protocol/message.ts), so the agent sees a line the way the server does, and written
 * back for the plugin to use instead. No state and no decisions: session.ts decides.
 */
import { parseLine } from '../../protocol/message.js';
import type { TextCommand } from '../core/index.js';

/** A received or outgoing line, as the agent reads it. */
export interface PluginLine {
  /** The tag section as the plugin had it, with its trailing space ('' if none): kept on rewrites. */
  tags: string;
  /** The source (`nick!user@host`, or a server name), '' if none. */
  source: string;
  /** The source's nick ('' if none). */
  nick: string;
  /** Upper-cased. */
  command: string;
  params: string[];
  /** The IRCv3 tags the core reads (msgid, time, batch), if the line carries them. */
  lineTags?: { msgid?: string; time?: string; batch?: string };
}

/** Read one line; undefined if the IRC grammar does not allow it. */
export function readLine(raw: string): PluginLine | undefined {
  const r = parseLine(raw);
  if (!r.ok) return undefined;
  const m = r.message;
  const trimmed = raw.replace(/^ +/, '');
  const tags = trimmed.startsWith('@') ? trimmed.slice(0, trimmed.indexOf(' ') + 1) : '';
  const source = m.source ?? '';
  const lineTags = Object.fromEntries(['msgid', 'time', 'batch'].flatMap((k) => (m.tags.has(k) ? [[k, m.tags.get(k)!]] : [])));
  return {
    tags,
    source,
    nick: source.split('!')[0]!.split('@')[0]!,
    command: m.command,
    params: m.params,
    ...(Object.keys(lineTags).length > 0 ? { lineTags } : {}),
  };
}

/**
 * Lines that come from the server itself (no source, or a server name: a nick has no `.`) rather
 * than from a user. Before the plugin has said `connected` there is no session to ask, and there
 * is nothing to decide about them either: no room key exists yet.
 */
export function fromServer(l: PluginLine): boolean {
  return l.source === '' || (!l.source.includes('!') && l.source.includes('.'));
}

/** The same line with another trailing text (the line the client then processes as received). */
export function withText(l: PluginLine, command: TextCommand, text: string): string {
  return `${l.tags}${l.source !== '' ? `:${l.source} ` : ''}${command} ${l.params[0] ?? ''} :${text}`;
}

/** An outgoing line for `target`, keeping the tags the plugin's client put on the line it replaces. */
export function outLine(l: PluginLine, command: TextCommand, target: string, text: string): string {
  return `${l.tags}${command} ${target} :${text}`;
}

/** `tag` in front of shown text, inside a CTCP ACTION (`/me`) when it is one. */
export function withMarker(text: string, tag: string): string {
  if (tag === '') return text;
  return text.startsWith('\x01ACTION ') ? `\x01ACTION ${tag} ${text.slice(8)}` : `${tag} ${text}`;
}
