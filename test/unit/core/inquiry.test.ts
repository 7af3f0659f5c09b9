import { describe, expect, it } from 'vitest';
import { harness, inquiryCdb, senseOf } from './helpers.js';

describe('INQUIRY standard data', () => {
  it('claims SPC-4, HiSup, CmdQue, RMB=0 and the version descriptors', async () => {
    const h = harness();
    const n = await h.connect();
    const r = await n.command(0, inquiryCdb(false, 0, 260));
    expect(r.status).toBe(0);
    const d = r.dataIn!;
    expect(d.length).toBe(74);
    expect(d[0]).toBe(0x00); // PQ 0, direct access
    expect(d[1] & 0x80).toBe(0); // RMB
    expect(d[2]).toBe(0x06);
    expect(d[3]).toBe(0x12); // HISUP, format 2
    expect(d[4]).toBe(d.length - 5);
    expect(d[7] & 0x02).toBe(0x02);
    expect(d.subarray(8, 16).toString('latin1')).toBe('LUNKIT  ');
    const versions = [];
    for (let i = 58; i < 74; i += 2) versions.push(d.readUInt16BE(i));
    expect(versions).toContain(0x0460); // SPC-4
    expect(versions).toContain(0x04c0); // SBC-3
    expect(r.residualKind).toBe('underflow');
    expect(r.residualCount).toBe(65536 - 74);
  });

  it('cuts to the allocation length for every length 5..255 and agrees at 511/512', async () => {
    const h = harness();
    const n = await h.connect();
    for (let i = 5; i < 256; i++) {
      const r = await n.command(0, inquiryCdb(false, 0, i), { expectedLength: i });
      expect(r.status).toBe(0);
      expect(r.dataIn!.length).toBe(Math.min(i, 74));
    }
    const a = await n.command(0, inquiryCdb(false, 0, 511), { expectedLength: 511 });
    const b = await n.command(0, inquiryCdb(false, 0, 512), { expectedLength: 512 });
    expect(a.dataIn).toEqual(b.dataIn);
  });

  it('EVPD=0 with a page code is INVALID FIELD IN CDB', async () => {
    const h = harness();
    const n = await h.connect();
    const r = await n.command(0, inquiryCdb(false, 1, 256));
    expect(r.status).toBe(2);
    expect(senseOf(r.sense)).toMatchObject({ key: 5, asc: 0x24, ascq: 0 });
  });

  it('an unmapped LUN answers PQ 3 / type 1Fh, other commands get LUN NOT SUPPORTED', async () => {
    const h = harness();
    const n = await h.connect();
    const r = await n.command(5, inquiryCdb(false, 0, 96));
    expect(r.status).toBe(0);
    expect(r.dataIn![0]).toBe(0x7f);
    const t = await n.command(5, [0, 0, 0, 0, 0, 0]);
    expect(t.status).toBe(2);
    expect(senseOf(t.sense)).toMatchObject({ key: 5, asc: 0x25 });
    const rs = await n.command(5, [0x03, 0, 0, 0, 252, 0]);
    expect(rs.status).toBe(0);
    expect(senseOf(rs.dataIn)).toMatchObject({ key: 5, asc: 0x25 });
  });
});

describe('VPD pages', () => {
  it('0x00 lists pages in ascending order and every listed page reads', async () => {
    const h = harness({ caps: { thin: true } });
    const n = await h.connect();
    const r = await n.command(0, inquiryCdb(true, 0x00, 255));
    const d = r.dataIn!;
    expect(d[1]).toBe(0x00);
    const pages = [...d.subarray(4, 4 + d.readUInt16BE(2))];
    expect(pages).toEqual([0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2]);
    for (const p of pages) {
      const pr = await n.command(0, inquiryCdb(true, p, 255));
      expect(pr.status, `page ${p}`).toBe(0);
      expect(pr.dataIn![1]).toBe(p);
      expect(pr.dataIn!.length).toBe(pr.dataIn!.readUInt16BE(2) + 4);
    }
    const bad = await n.command(0, inquiryCdb(true, 0xc7, 255));
    expect(senseOf(bad.sense)).toMatchObject({ key: 5, asc: 0x24 });
  });

  it('0x80 carries the configured serial', async () => {
    const h = harness({ device: { serial: 'SER123' } });
    const n = await h.connect();
    const d = (await n.command(0, inquiryCdb(true, 0x80, 255))).dataIn!;
    expect(d.subarray(4).toString('latin1')).toBe('SER123');
  });

  it('0x83 has NAA, T10 vendor id, relative port, port group and SCSI name designators', async () => {
    const h = harness({ device: { naa: '6001405abcdef012' } });
    const n = await h.connect();
    const d = (await n.command(0, inquiryCdb(true, 0x83, 1024))).dataIn!;
    const found = new Map<string, Buffer>();
    let off = 4;
    while (off < d.length) {
      const assoc = (d[off + 1] >> 4) & 3;
      const type = d[off + 1] & 0x0f;
      const len = d[off + 3];
      found.set(`${assoc}:${type}`, d.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    expect(off).toBe(d.length);
    expect(found.get('0:3')!.toString('hex')).toBe('6001405abcdef012');
    expect(found.get('0:1')!.subarray(0, 8).toString('latin1')).toBe('LUNKIT  ');
    expect(found.get('1:4')!.readUInt16BE(2)).toBe(1);
    expect(found.get('1:5')).toBeDefined();
    const name = found.get('1:8')!;
    expect(name.length % 4).toBe(0);
    expect(name.toString('utf8').replace(/\0+$/, '')).toBe('loop:target,t,0x0001');
  });

  it('default NAA is a stable locally assigned NAA 3 identifier', async () => {
    const h1 = harness();
    const h2 = harness();
    const a = (await (await h1.connect()).command(0, inquiryCdb(true, 0x83, 255))).dataIn!;
    const b = (await (await h2.connect()).command(0, inquiryCdb(true, 0x83, 255))).dataIn!;
    expect(a[8] >> 4).toBe(3);
    expect(a.subarray(4, 16)).toEqual(b.subarray(4, 16));
  });

  it('0xB0 block limits: page length 0x3C, unmap limits only when thin', async () => {
    const thick = await harness().connect();
    const t = (await thick.command(0, inquiryCdb(true, 0xb0, 255))).dataIn!;
    expect(t.readUInt16BE(2)).toBe(0x3c);
    expect(t[5]).toBeGreaterThan(0); // MAXIMUM COMPARE AND WRITE LENGTH
    expect(t.readUInt32BE(8)).toBeGreaterThan(0); // MAXIMUM TRANSFER LENGTH
    expect(t.readUInt32BE(20)).toBe(0);
    expect(t.readUInt32BE(24)).toBe(0);
    expect(t.readBigUInt64BE(36)).toBeGreaterThan(0n);
    const thin = await harness({ caps: { thin: true } }).connect();
    const b = (await thin.command(0, inquiryCdb(true, 0xb0, 255))).dataIn!;
    expect(b.readUInt32BE(20)).toBeGreaterThan(0);
    expect(b.readUInt32BE(20)).toBeLessThanOrEqual(1024 * 1024);
    expect(b.readUInt32BE(24)).toBeGreaterThan(0);
  });

  it('0xB1 rotation rate and 0xB2 provisioning bits follow the caps', async () => {
    const thin = await harness({ caps: { thin: true, unmapReadsZero: true, rotationRate: 7200 } }).connect();
    const b1 = (await thin.command(0, inquiryCdb(true, 0xb1, 255))).dataIn!;
    expect(b1.readUInt16BE(4)).toBe(7200);
    const b2 = (await thin.command(0, inquiryCdb(true, 0xb2, 255))).dataIn!;
    expect(b2[5] & 0xe4).toBe(0xe4); // LBPU LBPWS LBPWS10 LBPRZ
    expect(b2[6] & 0x07).toBe(2);
    const thick = await harness({ caps: { thin: false } }).connect();
    const t2 = (await thick.command(0, inquiryCdb(true, 0xb2, 255))).dataIn!;
    expect(t2[5]).toBe(0);
    expect(t2[6] & 0x07).toBe(0);
    const noRz = await harness({ caps: { thin: true, unmapReadsZero: false } }).connect();
    expect((await noRz.command(0, inquiryCdb(true, 0xb2, 255))).dataIn![5] & 0x04).toBe(0);
  });
});

describe('VPD 0xB0 atomic fields', () => {
  it('MAXIMUM ATOMIC TRANSFER LENGTH follows WRITE ATOMIC(16) in the dispatch table', async () => {
    const h = harness();
    const n = await h.connect();
    const b0 = (await n.command(0, inquiryCdb(true, 0xb0, 255))).dataIn!;
    const hasAtomic = h.core.commands.some((c) => c.opcode === 0x9c);
    expect(b0.readUInt32BE(44) !== 0).toBe(hasAtomic);
    expect(b0.readUInt32BE(44)).toBeLessThanOrEqual(b0.readUInt32BE(8));
    expect(b0.readUInt32BE(48)).toBe(0);
    expect(b0.readUInt32BE(52)).toBe(0);
  });
});
