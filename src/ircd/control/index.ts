/**
 * The control socket, daemon side: the server (net-ipc, validation, dispatch), the `user.*`
 * methods over the account service, the presence and channel methods over the live server, and
 * the admin tool's backend (`sealchatd user …`).
 */
export {
  CONTROL_METHODS, ControlFailure, ControlServer, errorResponse, makeControlDispatcher, parseControlRequest,
  type ControlHandler, type ControlHandlers, type ControlServerOptions,
} from './server.js';
export { makeAccountMethods, OFFLINE_PRESENCE, toUserInfo, type AccountMethods, type PresenceView } from './accounts.js';
export { makeChannelMethods } from './channels.js';
export { AdminError, formatUserTable, openAdmin, type AdminBackend, type UserMethod } from './admin.js';
