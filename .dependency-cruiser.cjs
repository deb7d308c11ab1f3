/**
 * The import rules of rowcast's layers (docs/architecture.md, "Layers"),
 * checked by `npm run check:imports` (part of `npm test`).
 *
 * src/ folders from the bottom up; a folder may import only folders below it
 * (and the shared root files: errors.ts, version.ts).
 */
const LAYERS = ['protocol', 'auth', 'config', 'db', 'replication', 'policies', 'topics', 'events', 'log', 'cluster', 'core', 'doors', 'http', 'server', 'library', 'cli'];

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} sits below ${LAYERS.slice(i + 1).join(', ')}: it must not import them`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only ones included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'protocol-is-the-bottom',
      comment: 'src/protocol is the wire contract the client packages share: it imports nothing of the server.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: '^src/(?!protocol/)' },
    },
    {
      name: 'replication-knows-no-sockets',
      comment: 'The replication stream knows nothing of sockets, doors or HTTP.',
      severity: 'error',
      from: { path: '^src/(replication|policies|topics|events|log)/' },
      to: { path: 'uWebSockets\\.js|^src/(doors|http|server)/' },
    },
    {
      name: 'client-imports-only-protocol',
      comment: '@rowcast/client imports nothing of the server but src/protocol, and no runtime packages.',
      severity: 'error',
      from: { path: '^packages/client/src/' },
      to: { path: '^(?!packages/client/src/|src/protocol/)' },
    },
    {
      name: 'react-imports-client-and-react',
      comment: '@rowcast/react imports @rowcast/client, React and src/protocol only.',
      severity: 'error',
      from: { path: '^packages/react/src/' },
      to: { path: '^(?!packages/react/src/|packages/client/|src/protocol/|node_modules/(react|@types/react|@rowcast/client)/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
