// Imports point inward only (ARCHITECTURE.md "Layers"). test/unit/layers.test.ts
// checks that this configuration really saw the modules (a TypeScript that
// dependency-cruiser cannot read makes it check 0 modules and still pass).
module.exports = {
  forbidden: [
    { name: 'protocols-import-nothing', severity: 'error',
      from: { path: '^src/protocols' }, to: { path: '^src/(?!protocols)' } },
    { name: 'nbd-client-protocols-only', severity: 'error',
      from: { path: '^src/nbd-client' }, to: { path: '^src/(?!protocols|nbd-client|util)' } },
    { name: 'initiator-protocols-only', severity: 'error',
      from: { path: '^src/initiator' }, to: { path: '^src/(?!protocols|initiator|util)' } },
    // The initiator serves the CLI (discovery) and the iscsi backstore (a
    // remote LUN as a backstore; attach reaches it through that backstore).
    { name: 'initiator-used-by-cli-and-iscsi-backstore', severity: 'error',
      from: { path: '^src/(?!initiator|cli|backstores/iscsi/)' }, to: { path: '^src/initiator' } },
    { name: 'core-no-outer-layers', severity: 'error',
      from: { path: '^src/core' }, to: { path: '^src/(backstores|fabrics|initiator|daemon|attach|cli|dashboard)' } },
    // backstores/iscsi alone may use the initiator: a remote LUN is an initiator
    // session (rule initiator-used-by-cli-and-iscsi-backstore).
    { name: 'backstores-inward', severity: 'error',
      from: { path: '^src/backstores' }, to: { path: '^src/(fabrics|daemon|attach|cli|dashboard)' } },
    { name: 'fabrics-not-each-other', severity: 'error',
      from: { path: '^src/fabrics/([^/]+)/' }, to: { path: '^src/fabrics/', pathNot: '^src/fabrics/$1/' } },
    { name: 'fabrics-inward', severity: 'error',
      from: { path: '^src/fabrics' }, to: { path: '^src/(backstores|initiator|daemon|attach|cli|dashboard)' } },
    // The boot lab's services (TFTP, HTTP, proxy DHCP, scripts) know protocols
    // and names only; the daemon wires them to LUNs and sessions.
    { name: 'bootlab-inward', severity: 'error',
      from: { path: '^src/bootlab' }, to: { path: '^src/(core|backstores|fabrics|initiator|nbd-client|daemon|attach|cli|dashboard)' } },
    { name: 'daemon-not-ui', severity: 'error',
      from: { path: '^src/daemon' }, to: { path: '^src/(cli|dashboard)' } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
