import { describe, expect, it } from 'vitest';
import { MutableLunMap } from '../../../src/fabrics/loopback/index.js';
import { MemoryBackstore, TUR, errnoError, harness, inquiryCdb, read10, senseOf, write10 } from './helpers.js';

function reportLuns(select: number, alloc: number): number[] {
  return [0xa0, 0, select, 0, 0, 0, (alloc >>> 24) & 0xff, (alloc >> 16) & 0xff, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];
}

function rsoc(options: number, opcode = 0, sa = 0, rctd = false, alloc = 65535): number[] {
  return [0xa3, 0x0c, (rctd ? 0x80 : 0) | options, opcode, sa >> 8, sa & 0xff, alloc >>> 24, (alloc >> 16) & 0xff, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];
}

describe('unit attentions', () => {
  it('a new nexus sees POWER ON once; INQUIRY, REPORT LUNS do not consume it', async () => {
    const h = harness();
    const n = await h.connect({ clearUa: false });
    expect((await n.command(0, inquiryCdb(false, 0, 96))).status).toBe(0);
    expect((await n.command(0, reportLuns(0, 64))).status).toBe(0);
    const first = await n.command(0, TUR);
    expect(first.status).toBe(2);
    expect(senseOf(first.sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0 });
    expect((await n.command(0, TUR)).status).toBe(0);
  });

  it('REQUEST SENSE returns and clears a pending UA, honours DESC, then says NO SENSE', async () => {
    const h = harness();
    const n = await h.connect({ clearUa: false });
    const rs = await n.command(0, [0x03, 0x01, 0, 0, 252, 0]);
    expect(rs.status).toBe(0);
    expect(rs.dataIn![0]).toBe(0x72);
    expect(senseOf(rs.dataIn)).toMatchObject({ key: 6, asc: 0x29 });
    expect((await n.command(0, TUR)).status).toBe(0);
    const none = await n.command(0, [0x03, 0, 0, 0, 18, 0]);
    expect(none.dataIn!.length).toBe(18);
    expect(senseOf(none.dataIn)).toMatchObject({ key: 0, asc: 0, ascq: 0, format: 0x70 });
  });

  it('lunsChanged and capacityChanged reach the nexuses that use the LU', async () => {
    const h = harness();
    const n = await h.connect();
    h.core.lunsChanged();
    const r = await n.command(0, TUR);
    expect(senseOf(r.sense)).toMatchObject({ key: 6, asc: 0x3f, ascq: 0x0e });
    expect(n.uaNotices).toContain(0);
    h.core.capacityChanged(h.dev);
    expect(senseOf((await n.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x2a, ascq: 0x09 });
    expect((await n.command(0, TUR)).status).toBe(0);
  });
});

describe('dispatch and CDB checks', () => {
  it('unknown opcode is INVALID OPERATION CODE; unknown service action INVALID FIELD IN CDB', async () => {
    const n = await harness().connect();
    expect(senseOf((await n.command(0, [0xc5, 0, 0, 0, 0, 0])).sense)).toMatchObject({ key: 5, asc: 0x20 });
    const sa = await n.command(0, [0xa3, 0x1e, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]);
    expect(senseOf(sa.sense)).toMatchObject({ key: 5, asc: 0x24 });
  });

  it('reserved CDB bits and NACA give INVALID FIELD IN CDB with a field pointer', async () => {
    const n = await harness().connect();
    const cdb = inquiryCdb(false, 0, 96);
    cdb[1] = 0x02; // CMDDT, obsolete
    const r = await n.command(0, cdb);
    expect(senseOf(r.sense)).toMatchObject({ key: 5, asc: 0x24 });
    expect([r.sense![15], r.sense![16], r.sense![17]]).toEqual([0x80 | 0x40 | 0x08 | 1, 0, 1]);
    const naca = await n.command(0, [0, 0, 0, 0, 0, 0x04]);
    expect(senseOf(naca.sense)).toMatchObject({ key: 5, asc: 0x24 });
    expect(naca.sense![17]).toBe(5);
  });

  it('a CDB shorter than its command is INVALID FIELD IN CDB, not a crash', async () => {
    const n = await harness().connect();
    const r = await n.command(0, [0xa0, 0, 0, 0, 0, 0]);
    expect(senseOf(r.sense)).toMatchObject({ key: 5, asc: 0x24 });
    expect(senseOf((await n.command(0, [0x12, 0, 0])).sense)).toMatchObject({ key: 5, asc: 0x24 });
  });

  it('backstore errors become sense data, never rejections', async () => {
    const h = harness();
    const n = await h.connect();
    h.store.failNext = errnoError('EIO');
    const r = await n.command(0, read10(0, 1), { expectedLength: 512 });
    expect(senseOf(r.sense)).toMatchObject({ key: 3, asc: 0x11 });
    h.store.failNext = errnoError('ENOSPC');
    const w = await n.command(0, write10(0, 1), { dataOut: Buffer.alloc(512) });
    expect(senseOf(w.sense)).toMatchObject({ key: 7, asc: 0x27, ascq: 7 });
    h.store.failNext = new Error('plain') as NodeJS.ErrnoException;
    const f = await n.command(0, read10(0, 1), { expectedLength: 512 });
    expect(senseOf(f.sense)).toMatchObject({ key: 4, asc: 0x44 });
  });

  it('residuals: data-in overflow and underflow, write overflow writes whole blocks only', async () => {
    const h = harness();
    const n = await h.connect();
    const over = await n.command(0, read10(0, 1), { expectedLength: 0 });
    expect(over.status).toBe(0);
    expect(over.residualKind).toBe('overflow');
    expect(over.residualCount).toBe(512);
    const under = await n.command(0, read10(0, 1), { expectedLength: 1024 });
    expect(under.dataIn!.length).toBe(512);
    expect(under).toMatchObject({ residualKind: 'underflow', residualCount: 512 });
    const data = Buffer.alloc(1024, 0xab);
    const w = await n.command(0, write10(0, 2), { dataOut: data.subarray(0, 512), expectedLength: 512 });
    expect(w).toMatchObject({ status: 0, residualKind: 'overflow', residualCount: 512 });
    expect(h.store.data[0]).toBe(0xab);
    expect(h.store.data[512]).toBe(0);
  });
});

describe('REPORT LUNS', () => {
  it('lists mapped LUNs in both address forms; select report 1 is empty; alloc < 16 is invalid', async () => {
    const h = harness();
    const luns = new MutableLunMap().set(0, h.dev).set(3, h.dev).set(300, h.dev);
    const n = await h.connect({ luns });
    const r = await n.command(0, reportLuns(0, 1024));
    const d = r.dataIn!;
    expect(d.readUInt32BE(0)).toBe(24);
    expect([...d.subarray(8, 16)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...d.subarray(16, 18)]).toEqual([0, 3]);
    expect([...d.subarray(24, 26)]).toEqual([0x41, 0x2c]);
    const wk = (await n.command(0, reportLuns(1, 1024))).dataIn!;
    expect(wk.readUInt32BE(0)).toBe(0);
    expect(senseOf((await n.command(0, reportLuns(0, 8))).sense)).toMatchObject({ key: 5, asc: 0x24 });
    expect(senseOf((await n.command(0, reportLuns(7, 64))).sense)).toMatchObject({ key: 5, asc: 0x24 });
    const cut = await n.command(0, reportLuns(2, 16), { expectedLength: 16 });
    expect(cut.dataIn!.length).toBe(16);
    expect(cut.dataIn!.readUInt32BE(0)).toBe(24);
    // Works on an unmapped LUN too.
    expect((await n.command(9, reportLuns(0, 64))).status).toBe(0);
  });
});

describe('REPORT SUPPORTED OPERATION CODES', () => {
  it('reports every command; one-command forms follow SERVACTV; RCTD adds timeouts', async () => {
    const h = harness();
    const n = await h.connect();
    const all = (await n.command(0, rsoc(0))).dataIn!;
    const len = all.readUInt32BE(0);
    expect(len % 8).toBe(0);
    expect(len / 8).toBe(h.core.commands.length);
    const descs: Array<{ op: number; sa: number; servactv: boolean; cdbLen: number }> = [];
    for (let off = 4; off < 4 + len; off += 8) {
      descs.push({ op: all[off], sa: all.readUInt16BE(off + 2), servactv: (all[off + 5] & 1) === 1, cdbLen: all.readUInt16BE(off + 6) });
      expect(all[off + 5] & 0x02).toBe(0);
    }
    expect(descs.some((d) => d.op === 0x12)).toBe(true);
    expect(descs.some((d) => d.op === 0x28)).toBe(true);
    expect(descs.some((d) => d.op === 0xa3 && d.sa === 0x0c && d.servactv)).toBe(true);
    for (const d of descs) {
      if (!d.servactv) expect(d.sa).toBe(0);
      const one = await n.command(0, rsoc(1, d.op, d.sa));
      const two = await n.command(0, rsoc(2, d.op, d.sa));
      const good = d.servactv ? two : one;
      const bad = d.servactv ? one : two;
      expect(good.status, `op ${d.op}`).toBe(0);
      expect(senseOf(bad.sense)).toMatchObject({ key: 5, asc: 0x24 });
      const g = good.dataIn!;
      expect(g[1] & 0x07).toBe(3);
      expect(g.readUInt16BE(2)).toBe(d.cdbLen);
      expect(g[4]).toBe(d.op);
    }
    const withTo = (await n.command(0, rsoc(0, 0, 0, true))).dataIn!;
    const tlen = withTo.readUInt32BE(0);
    expect(tlen / 20).toBe(descs.length);
    for (let off = 4; off < 4 + tlen; off += 20) {
      expect(withTo[off + 5] & 0x02).toBe(0x02);
      expect(withTo.readUInt16BE(off + 8)).toBe(0x0a);
    }
    const unsupported = (await n.command(0, rsoc(1, 0xc5))).dataIn!;
    expect(unsupported[1] & 0x07).toBe(1);
    const three = (await n.command(0, rsoc(3, 0x12, 0x99))).dataIn!;
    expect(three[1] & 0x07).toBe(3);
    expect(senseOf((await n.command(0, rsoc(5))).sense)).toMatchObject({ key: 5, asc: 0x24 });
  });

  it('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS with and without REPD', async () => {
    const n = await harness().connect();
    const cdb = [0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
    const r = (await n.command(0, cdb)).dataIn!;
    expect(r.length).toBe(4);
    expect(r[0] & 0x80).toBe(0x80); // ATS
    expect(r[0] & 0x08).toBe(0x08); // LURS
    expect(r[1] & 0x01).toBe(0x01); // ITNRS
    cdb[2] = 0x80;
    const e = (await n.command(0, cdb)).dataIn!;
    expect(e.length).toBe(16);
    expect(e[3]).toBe(0x0c);
  });
});

describe('reservations and nexus lifetime', () => {
  it('RESERVE(6) by one nexus gives others RESERVATION CONFLICT until it closes', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    expect((await a.command(0, [0x16, 0, 0, 0, 0, 0])).status).toBe(0);
    expect((await b.command(0, read10(0, 1), { expectedLength: 512 })).status).toBe(0x18);
    expect((await b.command(0, inquiryCdb(false, 0, 96))).status).toBe(0);
    // SPC-2 §5.5.1: MODE SENSE is not among the commands a RESERVE(6) lets through.
    expect((await b.command(0, [0x1a, 0, 0x3f, 0, 255, 0])).status).toBe(0x18);
    expect((await a.command(0, [0x1a, 0, 0x3f, 0, 255, 0])).status).toBe(0);
    a.close();
    expect((await b.command(0, read10(0, 1), { expectedLength: 512 })).status).toBe(0);
    // Commands from a closed nexus are answered as aborted (nobody to send to).
    expect((await a.command(0, TUR)).aborted).toBe(true);
  });

  it('removeDevice makes the LUN unsupported', async () => {
    const h = harness();
    const n = await h.connect();
    await h.core.removeDevice(h.dev);
    expect(senseOf((await n.command(0, TUR)).sense)).toMatchObject({ key: 5, asc: 0x25 });
  });

  it('flushAll flushes every device', async () => {
    const h = harness();
    const other = new MemoryBackstore('m2', 65536);
    h.core.createDevice(other, { name: 'm2' });
    await h.core.flushAll();
    expect(h.store.flushes).toBe(1);
    expect(other.flushes).toBe(1);
  });
});

describe('removable medium', () => {
  const eject = [0x1b, 0, 0, 0, 0x02, 0];
  const load = [0x1b, 0, 0, 0, 0x03, 0];
  const prevent = [0x1e, 0, 0, 0, 0x01, 0];
  const allow = [0x1e, 0, 0, 0, 0x00, 0];

  it('eject makes medium commands NOT READY, MEDIUM NOT PRESENT; PREVENT blocks eject and load', async () => {
    const h = harness({ device: { removable: true } });
    const n = await h.connect();
    expect((await n.command(0, inquiryCdb(false, 0, 96))).dataIn![1] & 0x80).toBe(0x80);
    expect((await n.command(0, prevent)).status).toBe(0);
    expect(senseOf((await n.command(0, eject)).sense)).toMatchObject({ key: 5, asc: 0x53, ascq: 2 });
    expect((await n.command(0, allow)).status).toBe(0);
    expect((await n.command(0, eject)).status).toBe(0);
    expect(senseOf((await n.command(0, TUR)).sense)).toMatchObject({ key: 2, asc: 0x3a, ascq: 0 });
    expect(senseOf((await n.command(0, read10(0, 1), { expectedLength: 512 })).sense)).toMatchObject({ key: 2, asc: 0x3a });
    expect((await n.command(0, inquiryCdb(false, 0, 96))).status).toBe(0);
    expect((await n.command(0, prevent)).status).toBe(0);
    expect(senseOf((await n.command(0, load)).sense)).toMatchObject({ key: 5, asc: 0x53, ascq: 2 });
    expect((await n.command(0, allow)).status).toBe(0);
    expect((await n.command(0, load)).status).toBe(0);
    expect((await n.command(0, TUR)).status).toBe(0);
  });

  it('a fixed medium ignores LOEJ', async () => {
    const n = await harness().connect();
    expect((await n.command(0, inquiryCdb(false, 0, 96))).dataIn![1] & 0x80).toBe(0);
    expect((await n.command(0, eject)).status).toBe(0);
    expect((await n.command(0, TUR)).status).toBe(0);
  });
});
