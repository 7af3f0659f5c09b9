// The acceptance test of issue 7's error recovery, against the lunkit target:
//
// - ERL 2: 4 connections, a write/verify workload (random data, sha256), one
//   connection's socket destroyed every 1-2 s from the test. Every command
//   completes, nothing is corrupted, and the session keeps its TSIH: every
//   cut is a connection recovery (Logout reason 2 + TASK REASSIGN), never a
//   reinstatement.
// - ERL 1: the same workload with data digests on and injected digest errors
//   both ways (fault.ts): Data-Out and immediate data (the target Rejects,
//   recovery R2T / command retry), Data-In (Data SNACK), SCSI Response
//   (Status SNACK), plus Data-In and responses lost outright (DataSN/StatSN
//   holes). Every command completes, nothing is corrupted, no connection is
//   lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { IscsiSession, flipByte, Opcode, type FaultHooks, type SessionOptions } from './api.js';
import { verifyAll, writeVerify } from './workload.js';

const SIZE = 32 << 20;
const IO = 128 << 10;

describe('initiator error recovery against the lunkit target (issue 7 acceptance)', () => {
  let t: TestTarget;
  let base: SessionOptions;
  beforeAll(async () => {
    t = await startIscsiTarget({
      lunSizes: [SIZE],
      parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0', DefaultTime2Retain: '20' },
    });
    base = { host: '127.0.0.1', port: t.port, targetName: t.iqn, keepaliveIntervalMs: 0, defaultTime2Wait: 0 };
  });
  afterAll(async () => {
    await t?.close();
  });

  it('ERL 2, 4 connections: a connection cut every 1-2 s loses nothing and never reinstates the session', async () => {
    const s = await IscsiSession.open({ ...base, connections: 4, errorRecoveryLevel: 2 });
    const events: string[] = [];
    s.on('recovery', (e) => events.push(e.kind));
    try {
      expect(s.errorRecoveryLevel).toBe(2);
      expect(s.connections).toHaveLength(4);
      const tsih = s.tsih;
      let cuts = 0;
      let stop = false;
      const cutter = (async () => {
        while (!stop) {
          await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000));
          if (stop) break;
          const live = s.connectionObjects.filter((c) => c.state === 'active' && !c.closed);
          // Cut only while something is in flight on it, so recovery has tasks to move.
          const busy = live.filter((c) => c.inFlight > 0);
          const victim = (busy.length > 0 ? busy : live)[Math.floor(Math.random() * (busy.length > 0 ? busy.length : live.length))];
          if (victim === undefined) continue;
          victim.cutSocket();
          cuts++;
        }
      })();
      const r = await writeVerify(s, { size: SIZE, io: IO, depth: 16, ms: 14_000 });
      stop = true;
      await cutter;
      expect(r.errors).toEqual([]);
      expect(r.rounds).toBeGreaterThan(100);
      expect(cuts).toBeGreaterThanOrEqual(6);
      // Let the last recovery finish, then check the whole image.
      for (let i = 0; i < 100 && s.connections.filter((c) => c.state === 'active').length < 4; i++) await new Promise((res) => setTimeout(res, 50));
      expect(await verifyAll(s, r.truth, IO)).toEqual([]);
      expect(s.tsih).toBe(tsih);
      expect(s.recoveries.reinstatements).toBe(0);
      expect(events).not.toContain('reinstating');
      expect(s.recoveries.connectionRecoveries).toBe(cuts);
      expect(s.connections.filter((c) => c.state === 'active')).toHaveLength(4);
      expect(t.server.sessions().filter((x) => x.tsih === tsih)).toHaveLength(1);
    } finally {
      await s.logout();
    }
  });

  it('ERL 2, 1 connection: a cut reinstates the connection (same CID) and keeps the TSIH', async () => {
    const s = await IscsiSession.open({ ...base, connections: 1, errorRecoveryLevel: 2 });
    try {
      const tsih = s.tsih;
      const io = writeVerify(s, { size: SIZE, io: IO, depth: 8, ms: 4000 });
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 900));
        s.connectionObjects[0].cutSocket();
      }
      const r = await io;
      expect(r.errors).toEqual([]);
      expect(await verifyAll(s, r.truth, IO)).toEqual([]);
      expect(s.tsih).toBe(tsih);
      expect(s.recoveries).toEqual({ reinstatements: 0, connectionRecoveries: 3 });
      expect(s.connections.map((c) => c.cid)).toEqual([0]);
    } finally {
      await s.logout();
    }
  });

  for (const erl of [1, 2] as const) it(`ERL ${erl}: injected data digest errors both ways are recovered (Reject + R2T/retry, Data and Status SNACK)`, async () => {
    const counts = { dataOut: 0, immediate: 0, dataIn: 0, status: 0, lostDataIn: 0, lostStatus: 0 };
    let n = 0;
    const faults: FaultHooks = {
      frame: (frame, out) => {
        // The data digest is the last 4 bytes of the last iovec.
        if (out.data === undefined || out.data.length === 0) return undefined;
        const op = out.pdu.opcode;
        if (op !== Opcode.DATA_OUT && op !== Opcode.SCSI_COMMAND) return undefined;
        if (++n % 23 !== 0) return undefined;
        if (op === Opcode.DATA_OUT) counts.dataOut++;
        else counts.immediate++;
        const last = frame[frame.length - 1];
        return [...frame.slice(0, -1), flipByte(last, last.length - 1)];
      },
      receive: (raw) => {
        const op = raw.bhs[0] & 0x3f;
        if (op === Opcode.DATA_IN && raw.data.length > 0 && ++n % 19 === 0) {
          counts.dataIn++;
          return [{ ...raw, dataDigestOk: false }];
        }
        if (op === Opcode.SCSI_RESPONSE && ++n % 17 === 0) {
          counts.status++;
          return [{ ...raw, dataDigestOk: false }];
        }
        // Lost outright (no digest to tell): the next DataSN/StatSN shows the
        // hole, or the NOP-In answering the keepalive ping does.
        if (op === Opcode.SCSI_RESPONSE && ++n % 37 === 0) {
          counts.lostStatus++;
          return [];
        }
        if (op === Opcode.DATA_IN && ++n % 41 === 0) {
          counts.lostDataIn++;
          return [];
        }
        return undefined;
      },
    };
    const s = await IscsiSession.open({ ...base, connections: 2, errorRecoveryLevel: erl, dataDigest: true, immediateData: true, initialR2T: false, maxRecvDataSegmentLength: 32768, faults, keepaliveIntervalMs: 300 });
    const events: string[] = [];
    s.on('recovery', (e) => events.push(e.kind));
    try {
      expect(s.errorRecoveryLevel).toBe(erl);
      expect(s.params.dataDigest).toBe(true);
      const tsih = s.tsih;
      const r = await writeVerify(s, { size: SIZE, io: IO, depth: 8, ms: 6000 });
      expect(r.errors).toEqual([]);
      expect(r.rounds).toBeGreaterThan(50);
      expect(counts.dataOut).toBeGreaterThan(5);
      expect(counts.immediate).toBeGreaterThan(0);
      expect(counts.dataIn).toBeGreaterThan(5);
      expect(counts.status).toBeGreaterThan(5);
      expect(counts.lostStatus).toBeGreaterThan(2);
      expect(counts.lostDataIn).toBeGreaterThan(2);
      s.connectionObjects.forEach((c) => (c.faults = undefined));
      expect(await verifyAll(s, r.truth, IO)).toEqual([]);
      expect(events).toEqual([]);
      expect(s.tsih).toBe(tsih);
    } finally {
      await s.logout();
    }
  });
});

describe('initiator ERL 2: header digest errors', () => {
  it('a corrupted command header makes the target drop the connection; the command (a CmdSN hole) is resent after recovery', async () => {
    const t = await startIscsiTarget({ lunSizes: [SIZE], parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0' } });
    let n = 0;
    let corrupted = 0;
    const faults: FaultHooks = {
      // frame[1] is the header digest: the target cannot trust the length and drops the connection.
      frame: (frame, out) => {
        if (out.pdu.opcode !== Opcode.SCSI_COMMAND || ++n % 40 !== 0) return undefined;
        corrupted++;
        return [frame[0], flipByte(frame[1], 0), ...frame.slice(2)];
      },
    };
    const s = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, keepaliveIntervalMs: 0, defaultTime2Wait: 0, connections: 2, errorRecoveryLevel: 2, headerDigest: true, faults });
    try {
      const tsih = s.tsih;
      const r = await writeVerify(s, { size: SIZE, io: IO, depth: 8, ms: 4000 });
      expect(r.errors).toEqual([]);
      expect(corrupted).toBeGreaterThan(2);
      expect(s.recoveries.connectionRecoveries).toBe(corrupted);
      expect(s.recoveries.reinstatements).toBe(0);
      expect(s.tsih).toBe(tsih);
    } finally {
      await s.logout();
      await t.close();
    }
  });
});

describe('initiator ERL 2 timers against the lunkit target', () => {
  it('honours DefaultTime2Wait before the logout for recovery', async () => {
    const t = await startIscsiTarget({ lunSizes: [SIZE], parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '1' } });
    const s = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, keepaliveIntervalMs: 0, defaultTime2Wait: 0, connections: 2, errorRecoveryLevel: 2 });
    try {
      expect(s.params.defaultTime2Wait).toBe(1);
      const recovered = new Promise<number>((resolve) => s.on('recovery', (e) => e.kind === 'connection-recovered' && resolve(e.ms)));
      const io = writeVerify(s, { size: SIZE, io: IO, depth: 8, ms: 2500 });
      await new Promise((r) => setTimeout(r, 300));
      const victim = s.connectionObjects.find((c) => c.inFlight > 0) ?? s.connectionObjects[0];
      victim.cutSocket();
      expect(await recovered).toBeGreaterThanOrEqual(1000);
      const r = await io;
      expect(r.errors).toEqual([]);
      expect(s.recoveries).toEqual({ reinstatements: 0, connectionRecoveries: 1 });
    } finally {
      await s.logout();
      await t.close();
    }
  });

  it('falls back to session reinstatement when Time2Retain leaves no time for connection recovery', async () => {
    const t = await startIscsiTarget({ lunSizes: [SIZE], parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0', DefaultTime2Retain: '0' } });
    const s = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, keepaliveIntervalMs: 0, defaultTime2Wait: 0, connections: 2, errorRecoveryLevel: 2 });
    try {
      expect(s.params.defaultTime2Retain).toBe(0);
      const tsih = s.tsih;
      const io = writeVerify(s, { size: SIZE, io: IO, depth: 8, ms: 2500 });
      await new Promise((r) => setTimeout(r, 300));
      (s.connectionObjects.find((c) => c.inFlight > 0) ?? s.connectionObjects[0]).cutSocket();
      const r = await io;
      expect(r.errors).toEqual([]);
      expect(await verifyAll(s, r.truth, IO)).toEqual([]);
      expect(s.recoveries.reinstatements).toBe(1);
      expect(s.tsih).not.toBe(tsih);
    } finally {
      await s.logout();
      await t.close();
    }
  });
});
