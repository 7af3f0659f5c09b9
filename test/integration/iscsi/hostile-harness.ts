// Shared by the hostile-client tests (issue 17): a real `lunkit daemon` with
// small iSCSI budgets, the daemon's memory and descriptors from /proc, its
// stats over the control socket, and a well-behaved second session that
// writes and reads back checksummed data while the hostile one misbehaves.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { fdCount, rssBytes } from '../../helpers/proc-usage.js';
import { RawInitiator, clearUnitAttention, collectRead, finishWrite, read10, scsiCmd, write10 } from '../../helpers/raw-iscsi.js';
import type { IscsiLimits } from '../../../src/fabrics/iscsi/limits.js';
import type { IscsiTotals, IscsiSessionStats } from '../../../src/fabrics/iscsi/stats.js';

export const IQN = 'iqn.2026-12.io.lunkit:hostile';
export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface HostileTarget {
  daemon: DaemonProcess;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * A daemon serving one 64 MiB file LUN (sparse: written data does not show
 * up in the daemon's RSS) with these iSCSI limits. `delayRead`: the delay
 * filter holds every read that long (commands stay in flight).
 */
export async function startHostileTarget(limits: Partial<IscsiLimits>, o: { delayRead?: string; parameters?: Record<string, string> } = {}): Promise<HostileTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-hostile-'));
  const port = await freePort();
  const config = {
    backstores: {
      d: { type: 'file', path: join(dir, 'd.img'), size: '64M', ...(o.delayRead ? { filters: [{ type: 'delay', read: o.delayRead }] } : {}) },
    },
    iscsi: {
      targets: {
        [IQN]: {
          tpgs: {
            '1': { portals: [`127.0.0.1:${port}`], luns: { '0': 'd' }, attributes: { generateNodeAcls: true }, parameters: o.parameters ?? {} },
          },
        },
      },
    },
    limits: { iscsi: limits },
  };
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  let daemon: DaemonProcess;
  try {
    daemon = await startDaemon({ dir, config: file });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const pid = daemon.child.pid!;
  return {
    daemon,
    port,
    pid,
    async stop() {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The daemon's iSCSI totals and sessions (`lunkit stats --json`). */
export async function iscsiStats(t: HostileTarget): Promise<{ totals: IscsiTotals; sessions: IscsiSessionStats[] }> {
  const r = await runCli(t.daemon.socket, ['stats', '--json']);
  if (r.code !== 0) throw new Error(`lunkit stats failed: ${r.stderr}`);
  const snap = JSON.parse(r.stdout) as { iscsi: { totals: IscsiTotals; sessions: IscsiSessionStats[] } };
  return snap.iscsi;
}

export function usage(pid: number): { rss: number; fds: number } {
  return { rss: rssBytes(pid), fds: fdCount(pid) };
}

/** Keys a normal session of these tests logs in with. */
export const NORMAL_KEYS: Array<[string, string]> = [
  ['MaxRecvDataSegmentLength', '262144'],
  ['MaxBurstLength', '262144'],
  ['FirstBurstLength', '65536'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'No'],
];

/** A logged-in session on its own connection, UNIT ATTENTION cleared. */
export async function loginSession(port: number, initiator: string, isid: number, extra: Array<[string, string]> = NORMAL_KEYS): Promise<RawInitiator> {
  const c = await RawInitiator.connect(port);
  await c.login(initiator, IQN, { isid, extra });
  await clearUnitAttention(c, 1);
  return c;
}

/**
 * The well-behaved client: a second session writes 256 KiB of patterned
 * data at `lba`, reads it back, and compares SHA-256 digests.
 */
export async function normalClientRoundTrip(port: number, lba: number, seed: number): Promise<{ written: string; read: string }> {
  const c = await loginSession(port, 'iqn.2026-12.io.lunkit:normal', 0x5000 + seed);
  try {
    const data = Buffer.alloc(256 * KiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed) & 0xff;
    const blocks = data.length / 512;
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write10(lba, blocks), write: data.length });
    const w = await finishWrite(c, 1, data);
    if (w.status !== 0) throw new Error(`normal client's WRITE failed with status ${w.status}`);
    scsiCmd(c, { itt: 2, cmdSN: 2, cdb: read10(lba, blocks), read: data.length });
    const r = await collectRead(c, 2);
    if (r.status !== 0) throw new Error(`normal client's READ failed with status ${r.status}`);
    return { written: sha256(data), read: sha256(r.data) };
  } finally {
    c.close();
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
