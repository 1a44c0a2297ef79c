/**
 * The data directory's layout: every file name the daemon, keybot and the admin tool share.
 * `sealchatd serve` creates the directory (0700); docs/OPERATIONS.md "Data directory" says what
 * each file holds and which may be deleted.
 */

/** The daemon's control socket (net-ipc over a unix socket, mode 0600): keybot and `sealchatd user`. */
export const CONTROL_SOCKET_NAME = 'control.sock';
/** keybot's service-account password, written by the daemon at first start, read by keybot (0600). */
export const KEYBOT_CREDENTIALS_FILE = 'keybot.credentials';
/** keybot's own OpenPGP private key (0600); its fingerprint is what companions pin. */
export const KEYBOT_KEY_FILE = 'keybot.key.asc';
/** keybot's room memory: room names, members and fingerprint pins, never keys (0600). */
export const ROOM_MEMORY_FILE = 'keybot.rooms.json';
/** The default embedded store (accounts, public keys). */
export const STORE_FILE_NAME = 'sealchat.sqlite';
