/* global structuredClone */
// Configuration scale against a real daemon (bench/config/run.sh runs this).
// Builds LUNS file backstores (sparse files in a temp dir) on TARGETS targets
// (one TPG each, all on one portal) with ACLS ACLs, then times: daemon start
// with it, `apply` from empty, `apply` and `diff` of a one-line change (one
// ACL added), `ls --json`, `save`, and `import targetcli` of the same objects
// in targetcli's format (written by `lunkit export targetcli`). Each CLI time
// is the whole process (node start included). The daemon runs with
// count-preload.cjs: files opened under the temp dir and TCP listeners bound,
// read before and after each step, plus the daemon's own log of targets
// added/updated/removed (a target not in that log had its sessions untouched).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const LUNS = arg('luns', 1000);
const TARGETS = arg('targets', 200);
const ACLS = arg('acls', 2000);
const BIN = resolve('bin/lunkit.js');
const PRELOAD = resolve('bench/config/count-preload.cjs');
const dir = mkdtempSync(join(tmpdir(), 'lunkit-bench-config-'));
const sock = join(dir, 's.sock');

function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function buildDoc(port) {
  const backstores = {};
  for (let i = 0; i < LUNS; i++) backstores[`d${i}`] = { type: 'file', path: join(dir, `d${i}.img`), size: 1 << 20 };
  const targets = {};
  for (let t = 0; t < TARGETS; t++) {
    const luns = {};
    for (let i = t; i < LUNS; i += TARGETS) luns[String(Object.keys(luns).length)] = `d${i}`;
    const acls = {};
    for (let a = t; a < ACLS; a += TARGETS) acls[`iqn.1994-05.com.example:host${a}`] = {};
    targets[`iqn.2026-01.org.example:bench${t}`] = { tpgs: { 1: { portals: [`127.0.0.1:${port}`], luns, acls } } };
  }
  return { backstores, iscsi: { targets } };
}

function cli(args, ok = [0]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args, '--socket', sock], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!ok.includes(r.status)) throw new Error(`lunkit ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout };
}

class Daemon {
  constructor(config) {
    this.log = '';
    const t0 = process.hrtime.bigint();
    const args = [BIN, 'daemon', '--socket', sock, '--log-level', 'info', ...(config ? ['--config', config] : [])];
    this.child = spawn(process.execPath, ['--require', PRELOAD, ...args], { env: { ...process.env, LUNKIT_BENCH_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.ready = new Promise((res, rej) => {
      const on = (b) => {
        this.log += b.toString();
        if (/\bready\b/.test(this.log) && this.startMs === undefined) {
          this.startMs = Number(process.hrtime.bigint() - t0) / 1e6;
          res(this.startMs);
        }
      };
      this.child.stdout.on('data', on);
      this.child.stderr.on('data', on);
      this.child.once('exit', (c) => rej(new Error(`daemon exited ${c}: ${this.log.slice(-2000)}`)));
      setTimeout(() => rej(new Error('daemon not ready in 120 s')), 120_000).unref();
    });
  }
  /** Files opened, listeners bound and targets added/updated/removed so far. */
  async counts() {
    const mark = this.log.length;
    this.child.kill('SIGUSR2');
    for (let i = 0; i < 100 && !/bench-counts \{/.test(this.log.slice(mark)); i++) await new Promise((r) => setTimeout(r, 20));
    const m = /bench-counts (\{.*\})/.exec(this.log.slice(mark));
    const c = JSON.parse(m[1]);
    const n = (re) => (this.log.match(re) ?? []).length;
    return { ...c, targets: n(/iSCSI target (added|updated|removed)/g), backstoresOpened: n(/backstore opened/g) };
  }
  async stop() {
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await done;
  }
}

const delta = (a, b) => ({ opens: b.opens - a.opens, binds: b.binds - a.binds, targets: b.targets - a.targets });
const rows = [];
const row = (what, ms, d) => rows.push({ what, ms, ...(d ?? {}) });

try {
  const port = await freePort();
  const doc = buildDoc(port);
  const full = join(dir, 'full.json');
  writeFileSync(full, JSON.stringify(doc, null, 2));
  // The one-line change: one more ACL on one target.
  const changed = structuredClone(doc);
  changed.iscsi.targets[`iqn.2026-01.org.example:bench${Math.floor(TARGETS / 2)}`].tpgs[1].acls['iqn.1994-05.com.example:newhost'] = {};
  const change = join(dir, 'change.json');
  writeFileSync(change, JSON.stringify(changed, null, 2));
  const aclCount = Object.values(doc.iscsi.targets).reduce((n, t) => n + Object.keys(t.tpgs[1].acls).length, 0);
  console.log(`configuration: ${LUNS} file backstores/LUNs, ${TARGETS} targets, ${aclCount} ACLs, one portal (127.0.0.1:${port})`);

  // Empty daemon, apply the whole file (creates the sparse files).
  let d = new Daemon();
  await d.ready;
  let c0 = await d.counts();
  const applyFull = cli(['apply', full]);
  let c1 = await d.counts();
  row('apply from empty', applyFull.ms, delta(c0, c1));
  const diff1 = cli(['diff', change], [2]);
  row('diff of a one-line change', diff1.ms, delta(c1, await d.counts()));
  c0 = await d.counts();
  const apply1 = cli(['apply', change]);
  c1 = await d.counts();
  row('apply of a one-line change', apply1.ms, delta(c0, c1));
  c0 = c1;
  const applyBack = cli(['apply', full]);
  row('apply of it undone', applyBack.ms, delta(c0, await d.counts()));
  const noop = cli(['apply', full]);
  row('apply with nothing to change', noop.ms);
  const ls = cli(['ls', '--json']);
  row(`ls --json (${(ls.out.length / 1024).toFixed(0)} KiB)`, ls.ms);
  const saved = join(dir, 'saved.json');
  row('save', cli(['save', saved]).ms);
  await d.stop();

  // Daemon start with the file.
  d = new Daemon(saved);
  const startMs = await d.ready;
  row('daemon start with it (to ready)', startMs, { ...(await d.counts()), targets: undefined });
  await d.stop();

  // targetcli's format of the same objects, and lunkit's importer on it.
  const tc = join(dir, 'saveconfig.json');
  spawnSync(process.execPath, [BIN, 'export', 'targetcli', '--config', full, '--out', tc], { encoding: 'utf8' });
  const imp = cli(['import', 'targetcli', tc, '--out', join(dir, 'imported.json')]);
  row('import targetcli (convert)', imp.ms);

  console.log('| step | ms | files opened | TCP binds | targets added/updated/removed |');
  console.log('|---|---:|---:|---:|---:|');
  const f = (v) => (v === undefined ? '' : String(v));
  for (const r of rows) console.log(`| ${r.what} | ${r.ms.toFixed(0)} | ${f(r.opens)} | ${f(r.binds)} | ${f(r.targets)} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
