/**
 * The agent protocol: what a WeeChat or irssi plugin and the local `sealchat agent` say to each
 * other over a unix socket. One JSON object per line (UTF-8, LF-terminated) each way; every request
 * gets exactly one reply, in order, carrying the request's `id`. Small enough for Python's `socket`
 * + `json` and Perl's IO::Socket::UNIX + JSON::PP. The full list is in docs/COMPANIONS.md
 * ("Plugins"); the types below are the reference.
 *
 * A plugin knows IRC; the agent knows crypto. The plugin forwards every PRIVMSG/NOTICE it sends
 * or receives (as the trailing text, with sender, target and command), and does what the reply
 * says: pass the line, hide it, show other text, send these lines instead, or refuse. Anything the
 * agent wants shown or sent that is not the answer to one line (a new room key, a message that
 * was waiting for its key, `PRIVMSG keybot :pubkey`) rides along in `events` and `send`.
 *
 * Protocol 2 adds `membership` (the JOIN, PART, KICK and QUIT a plugin sees in its rooms) and the
 * `hold` answer to `outgoing`: text for a room whose key may not be sent under any more (someone
 * left) waits for the next key and then goes out in `send`. A plugin says it understands `hold`
 * with `protocol: 2` in `connected`; older plugins are refused instead of told to hold.
 *
 * Protocol 3 makes the plugin a pure adapter: it hands over each raw line (`line`, in or out) and
 * applies the action answered, with nothing of IRC or sealchat to know. The agent reads the line,
 * decides which lines matter (PRIVMSG, NOTICE, TOPIC out; PRIVMSG, NOTICE, JOIN, PART, KICK, QUIT
 * in), recognises the lines it asked the plugin to send, rewrites shown text whole (the plugin's
 * marker in it), may answer one outgoing line with several lines to any target (a keybot command
 * replaced by signed lines), and says everything the user should read in `events`. Without an
 * answer the plugin follows one rule (docs/PROTOCOL.md "Faults", "Targets"). Protocol 1 and 2
 * requests are still served, so an agent upgrade does not break a plugin loaded before it.
 */

/** Bumped when a request or reply changes incompatibly. */
export const AGENT_PROTOCOL_VERSION = 3;

/** A request line may not be longer than this (bytes); a longer one is answered with an error. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export type RequestId = number | string | null;

/** Fields every request has. `server` names one IRC connection of the plugin (see ConnectedRequest). */
interface Base {
  id?: RequestId;
}

/** Who is there, and which protocol. */
export interface HelloRequest extends Base {
  op: 'hello';
  /** The plugin, e.g. "weechat 3.8". */
  client?: string;
}

/**
 * The plugin is logged in on an IRC connection (or it was loaded while already connected).
 * `server` is the plugin's label for the connection, unique among the connections that use this
 * agent (the plugins use "weechat/<server name>" and "irssi/<tag>"). `fresh`: the IRC session is
 * new, so room keys held for an earlier one are dropped; false re-attaches to the session the
 * agent already has for this label (a script reload), if its nick matches.
 */
export interface ConnectedRequest extends Base {
  op: 'connected';
  server: string;
  nick: string;
  /** The server's address and port, which name the known-keybots entry (`host:port`). */
  host?: string;
  port?: number;
  fresh?: boolean;
  /** Channels the client is already in (on a reload): keybot is asked again for their keys. */
  rooms?: string[];
  /**
   * The protocol the plugin speaks; 2 or more: it understands `hold` (and sends `membership`);
   * 3: it sends `line` and shows text and notices as they come.
   */
  protocol?: number;
  /** Protocol 3: what to put before verified text (default a check mark, "\u2713"). */
  marker?: string;
}

/** The IRC connection is gone: its keys are wiped. */
export interface DisconnectedRequest extends Base {
  op: 'disconnected';
  server: string;
}

/** One received PRIVMSG or NOTICE. `text` is the trailing parameter as received. */
export interface IncomingRequest extends Base {
  op: 'incoming';
  server: string;
  /** The sender's nick ('' for a server notice). */
  from: string;
  target: string;
  command: 'PRIVMSG' | 'NOTICE';
  text: string;
}

/** One PRIVMSG or NOTICE about to be sent (one wire line: the plugin's client already split it). */
export interface OutgoingRequest extends Base {
  op: 'outgoing';
  server: string;
  target: string;
  command?: 'PRIVMSG' | 'NOTICE';
  text: string;
}

/**
 * Protocol 3: one raw IRC line, as the plugin's client received it (`in`: PRIVMSG, NOTICE, JOIN,
 * PART, KICK, QUIT; with its `@tags` and `:source`) or is about to send it (`out`: PRIVMSG, NOTICE,
 * TOPIC; one wire line, after the client split long text). Other lines may be sent too: they pass.
 */
export interface LineRequest extends Base {
  op: 'line';
  server: string;
  dir: 'in' | 'out';
  line: string;
}

/**
 * What to do with a `line`. in: `pass` (process it as received), `hide` (drop it), `show` (process
 * `line` instead: the same line with the text to show, marker included; `text` is that text
 * alone). out: `pass` (send it as it is), `send` (send `lines` instead, whole raw lines, to any
 * target, in order), `refuse` or `hold` (send nothing; `reason` says why, and what the user reads
 * about it is in `events`). Any other action: drop the line (fail closed).
 */
export interface LineReply extends ReplyBase {
  action: 'pass' | 'hide' | 'show' | 'send' | 'refuse' | 'hold';
  line?: string;
  text?: string;
  lines?: string[];
  reason?: string;
}

/** Before the client echoes typed text: would it be sent? (Lets a plugin refuse before the echo.) */
export interface CheckRequest extends Base {
  op: 'check';
  server: string;
  target: string;
}

/**
 * The answer to `check`. `action` is `refuse` when the text would not be sent (encrypted and it
 * cannot be sent now); a protocol-3 plugin is told why in `events`, older ones read `reason`.
 */
export interface CheckReply extends ReplyBase {
  action: 'pass' | 'refuse';
  encrypted: boolean;
  canSend: boolean;
  /** It would wait for the room's next key: let the client echo it. */
  held?: boolean;
  reason?: string;
}

/** We left a room (PART, KICK): its keys are wiped now; sending there stays refused. */
export interface LeftRequest extends Base {
  op: 'left';
  server: string;
  room: string;
}

/**
 * Someone joined, left (PART), was removed from (KICK: `nick` is the member removed) or quit
 * (QUIT: `room` is not needed) a channel the plugin's client is in, ourselves included. Sent for
 * sealchat rooms, in the order the client received them among the `incoming` lines.
 */
export interface MembershipRequest extends Base {
  op: 'membership';
  server: string;
  kind: 'join' | 'part' | 'kick' | 'quit';
  room?: string;
  nick: string;
  /** The plugin's own nick now (must be the agent's account, as in `connected`). */
  me?: string;
}

/** Which rooms' keys may not be sent under after the change. */
export interface MembershipReply extends ReplyBase {
  /**
   * Every room whose current key is suspended (a member of its epoch left or quit, or someone
   * unlisted joined) until keybot's next key: text typed there is answered with `hold`.
   */
  suspended: Array<{ room: string; reason: string }>;
}

/** Anything to show or send? (Plugins poll about once a second.) */
export interface PollRequest extends Base {
  op: 'poll';
}

/** The rooms one connection holds or held keys for, and keybot's pinned fingerprint. */
export interface StatusRequest extends Base {
  op: 'status';
  server?: string;
}

export type AgentRequest =
  | HelloRequest
  | ConnectedRequest
  | DisconnectedRequest
  | IncomingRequest
  | OutgoingRequest
  | LineRequest
  | CheckRequest
  | LeftRequest
  | MembershipRequest
  | PollRequest
  | StatusRequest;

export type AgentOp = AgentRequest['op'];

/**
 * Something for the plugin to display that is not the rewrite of the line at hand.
 * - `message`: a decrypted, verified room message (released once its key came): show it in
 *   `target` as if `from` had just said `text` (for protocol 3 the marker is already in `text`).
 * - `key`: a new room key was installed for `room`; the plugin remembers the room as encrypted
 *   (to fail closed should the agent go away) and shows `text`.
 * - `notice`: sealchat's own status or warning line, for `target`'s buffer ('' = the server's).
 */
export interface AgentEvent {
  server: string;
  type: 'message' | 'key' | 'notice';
  target: string;
  text: string;
  from?: string;
  verified?: boolean;
  room?: string;
  level?: 'info' | 'warn' | 'error';
  /** A `message` said while we were away (the history catch-up): `text` carries its mark and time. */
  history?: boolean;
  /** Its server time, ms since the Unix epoch (a `message` from history). */
  time?: number;
}

/**
 * A raw IRC line the plugin sends on `server` for the agent (e.g. `PRIVMSG keybot :pubkey`, or a
 * held message's ciphertext). It is sent as it is: the plugin's own outgoing hook must not hand
 * it to the agent again (it would be encrypted twice, or held again).
 */
export interface AgentSend {
  server: string;
  line: string;
}

/** Fields every reply may carry. */
export interface ReplyBase {
  id: RequestId;
  ok: boolean;
  /** Set when ok is false: the request was not understood or cannot be served. */
  error?: string;
  /** With an error: `bad-request`, `unknown-server` (send `connected` first, then retry), `internal`. */
  code?: 'bad-request' | 'unknown-server' | 'internal';
  events?: AgentEvent[];
  send?: AgentSend[];
}

/** What to do with one received line. */
export interface IncomingReply extends ReplyBase {
  /** pass: leave the line alone; hide: drop it; show: replace its text with `text`. */
  action: 'pass' | 'hide' | 'show';
  text?: string;
  /** True only for a decrypted room message whose sender's signature verified. */
  verified?: boolean;
  /** Set for text that is shown but must not be mistaken for a sealed message (e.g. "NOT ENCRYPTED, NOT VERIFIED"). */
  warning?: string;
}

/** What to send for one outgoing line. */
export interface OutgoingReply extends ReplyBase {
  /**
   * send: send `lines` (same command and target) instead; refuse: send nothing, show `reason`;
   * pass: send as is; hold (protocol 2): send nothing now and show `reason` (the text waits for
   * the room's next key; its ciphertext comes later in `send`, or a NOT SENT notice after 30 s).
   */
  action: 'send' | 'refuse' | 'pass' | 'hold';
  lines?: string[];
  reason?: string;
}
