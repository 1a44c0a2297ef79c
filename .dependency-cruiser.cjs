/**
 * The layering rule (docs/DESIGN.md "Layers"): imports point down only.
 *
 *   src/web                          the web companion's page (bundled for the browser; nothing imports it)
 *   src/cli                          programs
 *   src/client   src/bot   src/ircd  companion library, key service, daemon (side by side, never each other)
 *   src/protocol                     wire contracts both ends share
 *   src/crypto   src/util            pure crypto (the only openpgp import), logging and small helpers
 *
 * `npm run check:layers` runs it; .ci/run fails on any violation or any import cycle.
 */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'An import cycle makes a layer depend on itself; split the shared part out.', from: { path: '^src/' }, to: { circular: true } },
    { name: 'client-not-ircd-bot-cli', severity: 'error', comment: 'The companion library knows only the wire (src/protocol) and crypto, never the daemon, keybot or the programs.', from: { path: '^src/client/' }, to: { path: '^src/(ircd|bot|cli)/' } },
    { name: 'bot-not-ircd-client-cli', severity: 'error', comment: 'keybot talks to the daemon over the wire and the control socket (src/protocol), never through its code.', from: { path: '^src/bot/' }, to: { path: '^src/(ircd|client|cli)/' } },
    { name: 'ircd-not-bot-client-cli', severity: 'error', comment: 'The daemon knows nothing of room keys or companions.', from: { path: '^src/ircd/' }, to: { path: '^src/(bot|client|cli)/' } },
    { name: 'protocol-is-a-floor', severity: 'error', comment: 'src/protocol is shared by both ends of the wire: it imports only crypto and util.', from: { path: '^src/protocol/' }, to: { path: '^src/(ircd|bot|client|cli)/' } },
    { name: 'crypto-is-pure', severity: 'error', comment: 'src/crypto imports nothing of the project above it.', from: { path: '^src/crypto/' }, to: { path: '^src/(ircd|bot|client|cli|protocol)/' } },
    { name: 'util-is-the-floor', severity: 'error', from: { path: '^src/util/' }, to: { path: '^src/(ircd|bot|client|cli|protocol|crypto)/' } },
    { name: 'one-openpgp-import', severity: 'error', comment: 'src/crypto/openpgp.ts is the one place that imports openpgp (and sets its config).', from: { path: '^src/', pathNot: '^src/crypto/openpgp\\.ts$' }, to: { path: '(^|/)node_modules/openpgp/' } },
    { name: 'nothing-imports-web', severity: 'error', comment: 'src/web is the page: a leaf that only the browser bundle starts from.', from: { path: '^src/', pathNot: '^src/web/' }, to: { path: '^src/web/' } },
    { name: 'web-only-client-protocol-crypto-util', severity: 'error', comment: 'The page uses the companion library (src/client/web) and what is below it, never the daemon, keybot or the programs.', from: { path: '^src/web/' }, to: { path: '^src/(ircd|bot|cli)/' } },
    {
      name: 'browser-no-node-builtins',
      severity: 'error',
      comment:
        'What the browser bundles (src/web, src/client/web, src/client/core, src/crypto and the src/protocol files they use) imports no Node built-in. ' +
        'primitives.ts and core/storage.ts are swapped for their .browser.ts twins by the build; src/web/build.ts and crypto/self-signed.ts are not bundled.',
      from: {
        path: '^src/(web|client/web|client/core|crypto)/|^src/protocol/(message|names|fingerprint|backoff|ctcp|keybot-command)\\.ts$',
        pathNot: '^src/crypto/(primitives|self-signed)\\.ts$|^src/client/core/storage\\.ts$|^src/web/build\\.ts$',
      },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'browser-no-node-only-modules',
      severity: 'error',
      comment: 'The browser bundle cannot use the Node-only parts of the companion library (SealClient over irc-framework, the proxy, the agent, files).',
      from: { path: '^src/(web|client/web|client/core)/' },
      to: { path: '^src/client/(client|transport|identity|server-trust|proxy/|agent/|seal-client/)|(^|/)node_modules/(irc-framework|net-ipc|keyv|@keyv|argon2|ws)/' },
    },
    { name: 'src-not-tests', severity: 'error', from: { path: '^src/' }, to: { path: '^(test|bench)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
