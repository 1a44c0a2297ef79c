/**
 * Names: one casefolding rule and one validity rule for nicks, account names and channels.
 *
 * sealchat advertises CASEMAPPING=ascii (modern.ircdocs.horse, "CASEMAPPING"): only A-Z fold to a-z.
 * It is the simplest mapping every client implements, and account names are restricted to ASCII
 * anyway, so rfc1459's {}|^ folding would buy nothing but surprises.
 */

/** Fold a nick, account or channel name for use as a registry key. */
export function casefold(name: string): string {
  return name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export const NICKLEN = 30;
export const CHANNELLEN = 50;

// Account names double as nicks (nick = account), so they obey the stricter of the two rules:
// an ASCII letter first (never a digit or '-', RFC 2812 §2.3.1), then letters, digits, '_' and '-'.
const ACCOUNT_RE = /^[A-Za-z][A-Za-z0-9_-]{0,29}$/;
// Guests (requireAccount=false) may use the wider RFC 2812 nick alphabet.
const NICK_RE = /^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}$/;
// Channel names: '#' then anything but space, comma, BEL, NUL, CR, LF, ':' (RFC 2812 §1.3).
const CHANNEL_RE = /^#[^\x00\x07\r\n ,:]{1,49}$/;

export function isValidAccountName(name: string): boolean {
  return ACCOUNT_RE.test(name);
}

export function isValidNick(name: string): boolean {
  return NICK_RE.test(name);
}

export function isValidChannelName(name: string): boolean {
  return CHANNEL_RE.test(name);
}

/** The reserved nick of the key service; no account but the service account may use it. */
export const KEYBOT_NICK = 'keybot';

/**
 * Channels whose names start with this belong to the key service: only the service account may
 * create them, so nobody can squat a name keybot will use or have keybot adopt a room it did not
 * open when it recovers its rooms after a restart.
 */
export const SERVICE_ROOM_PREFIX = '#sc-';

/**
 * The prefixes keybot may use on an existing IRC network (docs/NETWORKS.md): `#sc-`, or `##sc-`
 * where the network's namespace policy keeps `#name` for registered projects (Libera.Chat: `##`
 * channels are "about-topic" ones anyone may open). sealchatd reserves only SERVICE_ROOM_PREFIX.
 */
export const ROOM_PREFIXES = [SERVICE_ROOM_PREFIX, '##sc-'] as const;
export type RoomPrefix = (typeof ROOM_PREFIXES)[number];

/**
 * Is `name` a sealchat room under any prefix keybot may use? What the companions treat as
 * encrypted (text to it fails closed without a key), whichever prefix their network's keybot uses.
 */
export function isSealchatRoomName(name: string): boolean {
  const folded = casefold(name);
  return ROOM_PREFIXES.some((p) => folded.startsWith(p));
}
