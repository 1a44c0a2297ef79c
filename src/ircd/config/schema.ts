/**
 * The daemon's configuration as the code sees it: its shape, its defaults, and the error a bad
 * configuration raises. config.ts loads it; config/parse.ts checks a file against it.
 */

export interface ListenerConfig {
  host: string;
  port: number;
  /** Paths to a PEM certificate chain and its private key; absent = plain TCP. */
  tls?: { cert: string; key: string };
  /**
   * Speak IRC over WebSocket (IRCv3 WebSocket: one line per message) instead of raw TCP, and
   * serve the web companion over HTTP(S) on the same port. Same sessions, limits and logins.
   */
  websocket?: WebSocketOptions;
}

/** What a WebSocket listener allows and serves (listen[].websocket, listen[].origins, listen[].page). */
export interface WebSocketOptions {
  /**
   * Browser origins (`scheme://host[:port]`) whose pages may open a connection, besides the
   * listener's own origin; `*` allows any. A handshake without an Origin header (not a browser)
   * is always allowed: Origin only stops other web sites from using a visitor's browser.
   */
  origins: string[];
  /** Serve the web companion at GET / (true: the bundle `npm run build` puts in dist/page; a path: that folder; false: no page). */
  page: boolean | string;
}

export interface Limits {
  /** Connections the daemon accepts in total. */
  maxClients: number;
  /** Connections per IP address; 0 = unlimited. Addresses in exemptIps are not counted. */
  clonesPerIp: number;
  /** IPs or CIDR ranges exempt from clone limits (loopback by default, as in ergo). */
  exemptIps: string[];
  /** A connection must finish registration within this time. */
  registrationTimeoutMs: number;
  /** Idle this long → the server sends PING. */
  pingIntervalMs: number;
  /** No reply this long after PING → disconnect "Ping timeout". */
  pingTimeoutMs: number;
  /** Lines accepted at once before fakelag starts. */
  commandBurst: number;
  /** Fakelag refill rate. */
  commandsPerSecond: number;
  /** Unprocessed input beyond this → "Excess Flood" disconnect. */
  recvqBytes: number;
  /** Unsent output beyond this → "SendQ exceeded" disconnect. */
  sendqBytes: number;
  channelsPerUser: number;
  monitorLimit: number;
  loginAttemptsPerIpPerMinute: number;
  loginAttemptsPerAccountPerMinute: number;
  /**
   * IPv6 clients are counted (clonesPerIp, login attempts) by this many leading bits of their
   * address: a /64 is usually one subscriber. 128 counts each address on its own.
   */
  ipv6PrefixLength: number;
  /** Password-hash jobs running at once (argon2 is CPU and memory heavy). */
  hashConcurrency: number;
  /** Targets per PRIVMSG/NOTICE/TAGMSG, channels per NAMES, nicks per KICK (ISUPPORT TARGMAX). */
  maxTargets: number;
}

/**
 * What the daemon keeps of rooms (docs/PROTOCOL.md "Rooms that outlive a connection"; all of it
 * ciphertext in sealchat rooms): relayed room messages for CHATHISTORY and the mailbox of
 * keybot's NOTICEs to offline members.
 */
export interface HistoryConfig {
  /** Messages kept per room, oldest dropped first (also the most one CHATHISTORY serves). */
  maxMessages: number;
  /** Room messages and mailbox lines older than this many days are dropped. */
  maxAgeDays: number;
  /** Mailbox lines kept per account, oldest dropped first. */
  mailboxMax: number;
}

export const DEFAULT_HISTORY: Readonly<HistoryConfig> = Object.freeze({ maxMessages: 10_000, maxAgeDays: 30, mailboxMax: 2000 });

export interface Config {
  serverName: string;
  networkName: string;
  /** One line about this server, in LINKS (364) and WHOIS (312). */
  serverInfo: string;
  /** Absolute path. */
  dataDir: string;
  listen: ListenerConfig[];
  /** keyv URL of the account store. */
  store: string;
  requireAccount: boolean;
  /**
   * Refuse every line that is not valid UTF-8 with FAIL … INVALID_UTF8 and advertise UTF8ONLY
   * (IRCv3 utf8-only). Off: bad bytes are read as U+FFFD, as before.
   */
  utf8Only: boolean;
  /**
   * An account holder's nick is its account name (docs/DESIGN.md "Nick is the account"). false
   * (Ergo's `accounts.nick-reservation.force-nick-equals-account: false`) lets a session logged in
   * with SASL or PASS use another nick that no account owns, and lets a guest log in with SASL
   * after registration; such a session is kept out of rooms, whose end-to-end layer binds the
   * sender's nick to its account (docs/OPERATIONS.md "forceNickEqualsAccount").
   */
  forceNickEqualsAccount: boolean;
  /** argon2 encoded hash of an optional server-wide password (PASS), or null. */
  serverPasswordHash: string | null;
  /** OPER credentials. */
  operators: Array<{ name: string; passwordHash: string }>;
  motd: string[];
  keybot: { rotateAfterMessages: number; rotateAfterMs: number };
  limits: Limits;
  history: HistoryConfig;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxClients: 4096,
  clonesPerIp: 16,
  exemptIps: ['127.0.0.1', '::1'],
  registrationTimeoutMs: 60_000,
  pingIntervalMs: 90_000,
  pingTimeoutMs: 60_000,
  commandBurst: 16,
  commandsPerSecond: 4,
  recvqBytes: 16_384,
  sendqBytes: 262_144,
  channelsPerUser: 100,
  monitorLimit: 100,
  loginAttemptsPerIpPerMinute: 20,
  loginAttemptsPerAccountPerMinute: 10,
  ipv6PrefixLength: 64,
  hashConcurrency: 4,
  maxTargets: 4,
});

/**
 * Defaults before path resolution. `dataDir` is relative to the working directory and `store`
 * is empty, meaning `sqlite://<dataDir>/sealchat.sqlite`.
 */
export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  serverName: 'sealchat.local',
  networkName: 'sealchat',
  serverInfo: 'sealchat: end-to-end encrypted rooms over IRC',
  dataDir: './data',
  listen: [{ host: '127.0.0.1', port: 6667 }],
  store: '',
  requireAccount: true,
  utf8Only: false,
  forceNickEqualsAccount: true,
  serverPasswordHash: null,
  operators: [],
  motd: [
    'Welcome to sealchat: end-to-end encrypted rooms over IRC.',
    'Message keybot with "help" to open a room.',
  ],
  keybot: { rotateAfterMessages: 100, rotateAfterMs: 3_600_000 },
  limits: DEFAULT_LIMITS,
  history: DEFAULT_HISTORY,
});

