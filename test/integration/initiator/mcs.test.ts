// MC/S in the initiator against the lunkit target (RFC 7143 §4.2.2.x, §6.3):
// a session of N connections (same ISID/TSIH, own CIDs, min with the
// negotiated MaxConnections), commands spread least-loaded with allegiance,
// connections added and removed while I/O runs, info() as plain JSON, and
// ERL 0 session reinstatement when a connection is cut.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { IscsiSession, isIscsiInitiatorError, read16, write16, type SessionOptions } from './api.js';

const SIZE = 16 << 20;
const IO = 64 << 10;
const BS = 512;

const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Random writes then read-back checks, `depth` in flight, for `ms` or `count` rounds. */
async function workload(s: IscsiSession, o: { ms?: number; count?: number; depth: number }): Promise<number> {
  const blocks = SIZE / IO;
  const truth = new Map<number, string>();
  let done = 0;
  const end = Date.now() + (o.ms ?? 1e9);
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; Date.now() < end && (o.count === undefined || i < o.count); i++) {
      // Each worker owns its own blocks so no two writes race on one block.
      const blk = (w + o.depth * ((i * 7) % Math.floor(blocks / o.depth))) % blocks;
      const data = randomBytes(IO);
      // A new I_T nexus (a reinstated session) reports UNIT ATTENTION once: retry, as SCSI does.
      let wr = await write16(s, 0, (blk * IO) / BS, data, { blockSize: BS });
      for (let k = 0; k < 3 && !wr.ok && wr.sense?.key === 6; k++) wr = await write16(s, 0, (blk * IO) / BS, data, { blockSize: BS });
      expect(wr.ok ? 'ok' : JSON.stringify(wr, big)).toBe('ok');
      truth.set(blk, sha(data));
      let rd = await read16(s, 0, (blk * IO) / BS, IO / BS, { blockSize: BS });
      for (let k = 0; k < 3 && !rd.ok && rd.sense?.key === 6; k++) rd = await read16(s, 0, (blk * IO) / BS, IO / BS, { blockSize: BS });
      expect(rd.ok ? 'ok' : JSON.stringify(rd, big)).toBe('ok');
      if (rd.ok) expect(sha(rd.value)).toBe(truth.get(blk));
      done++;
    }
  };
  await Promise.all(Array.from({ length: o.depth }, (_, w) => worker(w)));
  return done;
}

describe('initiator MC/S against the lunkit target', () => {
  let t: TestTarget;
  let base: SessionOptions;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [SIZE], parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0' } });
    base = { host: '127.0.0.1', port: t.port, targetName: t.iqn, keepaliveIntervalMs: 0, defaultTime2Wait: 0 };
  });
  afterAll(async () => {
    await t?.close();
  });

  it('opens N connections with one TSIH and spreads commands over them', async () => {
    const s = await IscsiSession.open({ ...base, connections: 4 });
    try {
      expect(s.params.maxConnections).toBe(4);
      const info = s.info();
      expect(info.connections.map((c) => c.cid)).toEqual([0, 1, 2, 3]);
      expect(info.tsih).toBe(s.tsih);
      expect(info.isid).toMatch(/^[0-9a-f]{12}$/);
      expect(JSON.parse(JSON.stringify(info))).toEqual(info);
      const target = t.server.sessions().find((x) => x.tsih === s.tsih);
      expect(target?.connections.map((c) => c.cid).sort()).toEqual([0, 1, 2, 3]);
      // 8 in flight on 4 connections: each carries about two.
      let maxPer = 0;
      const seen = new Set<number>();
      const ps = Array.from({ length: 8 }, (_, i) => {
        const p = read16(s, 0, i * 128, 128, { blockSize: BS });
        for (const c of s.connections) {
          maxPer = Math.max(maxPer, c.inFlight);
          if (c.inFlight > 0) seen.add(c.cid);
        }
        return p;
      });
      await Promise.all(ps);
      expect(seen.size).toBe(4);
      expect(maxPer).toBeLessThanOrEqual(2);
      expect(await workload(s, { count: 8, depth: 8 })).toBe(64);
    } finally {
      await s.logout();
    }
  });

  it('opens min(N, MaxConnections) connections', async () => {
    const s = await IscsiSession.open({ ...base, connections: 12 });
    try {
      expect(s.params.maxConnections).toBe(8);
      expect(s.connections).toHaveLength(8);
      await expect(s.addConnection()).rejects.toMatchObject({ code: 'ERR_ISCSI_MAX_CONNECTIONS' });
    } finally {
      await s.logout();
    }
  });

  it('adds and removes connections while I/O runs', async () => {
    const s = await IscsiSession.open({ ...base, connections: 2, maxConnections: 4 });
    try {
      const io = workload(s, { ms: 3000, depth: 8 });
      await new Promise((r) => setTimeout(r, 300));
      const added = await s.addConnection();
      expect(added.cid).toBe(2);
      expect(s.connections.filter((c) => c.state === 'active')).toHaveLength(3);
      await new Promise((r) => setTimeout(r, 300));
      await s.removeConnection(0);
      expect(s.connections.map((c) => c.cid).sort()).toEqual([1, 2]);
      await new Promise((r) => setTimeout(r, 300));
      await s.removeConnection(1);
      expect(s.connections.map((c) => c.cid)).toEqual([2]);
      expect(await io).toBeGreaterThan(8);
      await expect(s.removeConnection(2)).rejects.toMatchObject({ code: 'ERR_ISCSI_MAX_CONNECTIONS' });
      const target = t.server.sessions().find((x) => x.tsih === s.tsih);
      expect(target?.connections.map((c) => c.cid)).toEqual([2]);
    } finally {
      await s.logout();
    }
  });

  it('ERL 0: reinstates the session when a connection is cut, and retries what had not completed', async () => {
    const s = await IscsiSession.open({ ...base, connections: 2, errorRecoveryLevel: 0 });
    const events: string[] = [];
    s.on('recovery', (e) => events.push(JSON.stringify(e)));
    try {
      expect(s.errorRecoveryLevel).toBe(0);
      const tsih0 = s.tsih;
      const io = workload(s, { ms: 2500, depth: 8 });
      await new Promise((r) => setTimeout(r, 400));
      s.connectionObjects[1].cutSocket();
      await new Promise((r) => setTimeout(r, 800));
      expect(s.connections.map((c) => c.state)).toEqual(['active', 'active']);
      s.connectionObjects[0].cutSocket();
      expect(await io).toBeGreaterThan(8);
      expect(s.recoveries.reinstatements).toBe(2);
      expect(s.tsih).not.toBe(tsih0);
      expect(events.filter((e) => e.includes('"reinstated"'))).toHaveLength(2);
      expect(s.connections).toHaveLength(2);
    } finally {
      await s.logout();
    }
  });

  it('ERL 0: gives up after the bounded attempts with ERR_ISCSI_RECOVERY_FAILED', async () => {
    const t2 = await startIscsiTarget({ lunSizes: [1 << 20], parameters: { DefaultTime2Wait: '0' } });
    const s = await IscsiSession.open({ host: '127.0.0.1', port: t2.port, targetName: t2.iqn, keepaliveIntervalMs: 0, errorRecoveryLevel: 0, reinstateAttempts: 2, reinstateBackoffMs: 10 });
    await t2.close();
    const err = await s.execute({ lun: 0, cdb: Buffer.from([0, 0, 0, 0, 0, 0]) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isIscsiInitiatorError(err, 'ERR_ISCSI_RECOVERY_FAILED')).toBe(true);
    expect(s.closed).toBe(true);
  });
});
