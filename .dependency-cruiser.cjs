/**
 * The layering rule (docs/DESIGN.md "Layers"): imports point down only.
 *
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
