import { describe, expect, it } from 'vitest';
import { harness, modeSense10, modeSense6, read10, senseOf, write10 } from './helpers.js';

/** Pages of a MODE SENSE(6) reply, by page code. */
function pagesOf6(d: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 4 + d[3];
  while (off < d.length) {
    const len = d[off + 1];
    out.set(d[off] & 0x3f, d.subarray(off, off + 2 + len));
    off += 2 + len;
  }
  return out;
}

/** MODE SELECT(6) of one page with a zero header. */
function modeSelect6(page: Buffer): { cdb: number[]; data: Buffer } {
  const data = Buffer.concat([Buffer.alloc(4), page]);
  data[4] &= 0x3f; // PS is reserved in MODE SELECT
  return { cdb: [0x15, 0x10, 0, 0, data.length, 0], data };
}

describe('MODE SENSE', () => {
  it('all pages (6): header, block descriptor and pages 01, 08, 0A, 1C in order', async () => {
    const n = await harness({ size: 2048 * 512 }).connect();
    const r = await n.command(0, modeSense6(0x3f), { expectedLength: 255 });
    expect(r.status).toBe(0);
    const d = r.dataIn!;
    expect(d[0]).toBe(d.length - 1);
    expect(d[2] & 0x80).toBe(0); // not write protected
    expect(d[2] & 0x10).toBe(0x10); // DPOFUA
    expect(d[3]).toBe(8);
    expect(d.readUInt32BE(4)).toBe(2048);
    expect(d.readUIntBE(9, 3)).toBe(512);
    expect([...pagesOf6(d).keys()]).toEqual([0x01, 0x08, 0x0a, 0x1c]);
    expect(r.residualKind).toBe('underflow');
    expect(r.residualCount).toBe(255 - d.length);
  });

  it('4-byte allocation gives exactly the header and no overflow', async () => {
    const n = await harness().connect();
    const r = await n.command(0, modeSense6(0x3f, { alloc: 4 }), { expectedLength: 4 });
    expect(r.dataIn!.length).toBe(4);
    expect(r.residualKind).toBe('none');
  });

  it('control page directly equals the one in all pages; caching WCE reflects the option', async () => {
    const n = await harness({ device: { writeCache: false } }).connect();
    const all = pagesOf6((await n.command(0, modeSense6(0x3f, { dbd: true }))).dataIn!);
    const ctl = (await n.command(0, modeSense6(0x0a, { dbd: true }))).dataIn!;
    expect(ctl[3]).toBe(0);
    expect(ctl.subarray(4)).toEqual(all.get(0x0a));
    expect(ctl[4 + 3] >> 4).toBe(1); // queue algorithm modifier
    expect(all.get(0x08)![2] & 0x04).toBe(0);
  });

  it('changeable values show WCE, D_SENSE and SWP only; saved values are not supported', async () => {
    const n = await harness().connect();
    const ch = pagesOf6((await n.command(0, modeSense6(0x3f, { pc: 1, dbd: true }))).dataIn!);
    expect(ch.get(0x08)![2]).toBe(0x04);
    expect(ch.get(0x0a)![2]).toBe(0x04);
    expect(ch.get(0x0a)![4]).toBe(0x08);
    expect([...ch.get(0x01)!.subarray(2)].every((b) => b === 0)).toBe(true);
    const saved = await n.command(0, modeSense6(0x3f, { pc: 3 }));
    expect(senseOf(saved.sense)).toMatchObject({ key: 5, asc: 0x39, ascq: 0 });
    const unknown = await n.command(0, modeSense6(0x19));
    expect(senseOf(unknown.sense)).toMatchObject({ key: 5, asc: 0x24 });
    const subpage = await n.command(0, modeSense6(0x0a, { subpage: 1 }));
    expect(senseOf(subpage.sense)).toMatchObject({ key: 5, asc: 0x24 });
  });

  it('MODE SENSE(10) with LLBAA returns a long block descriptor', async () => {
    const n = await harness({ size: 4096 * 512 }).connect();
    const d = (await n.command(0, modeSense10(0x0a, { llbaa: true }))).dataIn!;
    expect(d.readUInt16BE(0)).toBe(d.length - 2);
    expect(d[4] & 1).toBe(1);
    expect(d.readUInt16BE(6)).toBe(16);
    expect(d.readBigUInt64BE(8)).toBe(4096n);
    expect(d.readUInt32BE(20)).toBe(512);
    expect(d[24] & 0x3f).toBe(0x0a);
    const short = (await n.command(0, modeSense10(0x0a))).dataIn!;
    expect(short.readUInt16BE(6)).toBe(8);
  });
});

describe('MODE SELECT', () => {
  it('SWP makes the LU write protected, WP shows in MODE SENSE, others get MODE PARAMETERS CHANGED', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    const ctl = pagesOf6((await a.command(0, modeSense6(0x0a, { dbd: true }))).dataIn!).get(0x0a)!;
    const page = Buffer.from(ctl);
    page[4] |= 0x08;
    const sel = modeSelect6(page);
    const r = await a.command(0, sel.cdb, { dataOut: sel.data });
    expect(r.status).toBe(0);
    const ms = (await a.command(0, modeSense6(0x3f))).dataIn!;
    expect(ms[2] & 0x80).toBe(0x80);
    const w = await a.command(0, write10(0, 1), { dataOut: Buffer.alloc(512) });
    expect(senseOf(w.sense)).toMatchObject({ key: 7, asc: 0x27, ascq: 0 });
    expect((await a.command(0, read10(0, 1), { expectedLength: 512 })).status).toBe(0);
    // The other nexus learns of the change once.
    const ub = await b.command(0, [0, 0, 0, 0, 0, 0]);
    expect(senseOf(ub.sense)).toMatchObject({ key: 6, asc: 0x2a, ascq: 0x01 });
    expect((await b.command(0, [0, 0, 0, 0, 0, 0])).status).toBe(0);
    // The nexus that changed it gets no UA.
    page[4] &= ~0x08;
    const back = modeSelect6(page);
    expect((await a.command(0, back.cdb, { dataOut: back.data })).status).toBe(0);
    expect((await a.command(0, write10(0, 1), { dataOut: Buffer.alloc(512) })).status).toBe(0);
  });

  it('D_SENSE switches sense data to descriptor format', async () => {
    const n = await harness().connect();
    const ctl = pagesOf6((await n.command(0, modeSense6(0x0a, { dbd: true }))).dataIn!).get(0x0a)!;
    const page = Buffer.from(ctl);
    page[2] |= 0x04;
    const sel = modeSelect6(page);
    expect((await n.command(0, sel.cdb, { dataOut: sel.data })).status).toBe(0);
    const bad = await n.command(0, [0xff, 0, 0, 0, 0, 0]);
    expect(bad.sense![0]).toBe(0x72);
    expect(senseOf(bad.sense)).toMatchObject({ key: 5, asc: 0x20 });
  });

  it('refuses changes to non-changeable bits, unknown pages, wrong lengths and SP', async () => {
    const h = harness();
    const n = await h.connect();
    const ctl = pagesOf6((await n.command(0, modeSense6(0x0a, { dbd: true }))).dataIn!).get(0x0a)!;
    const tas = Buffer.from(ctl);
    tas[5] |= 0x40; // TAS is not changeable
    const s1 = modeSelect6(tas);
    const r1 = await n.command(0, s1.cdb, { dataOut: s1.data });
    expect(senseOf(r1.sense)).toMatchObject({ key: 5, asc: 0x26, ascq: 0 });
    expect([r1.sense![15], r1.sense![16], r1.sense![17]]).toEqual([0x80 | 0x08 | 6, 0, 4 + 5]);

    const unknown = Buffer.from([0x19, 2, 0, 0]);
    const s2 = modeSelect6(unknown);
    expect(senseOf((await n.command(0, s2.cdb, { dataOut: s2.data })).sense)).toMatchObject({ asc: 0x26 });

    const short = Buffer.from(ctl.subarray(0, 6));
    short[1] = 4;
    const s3 = modeSelect6(short);
    expect(senseOf((await n.command(0, s3.cdb, { dataOut: s3.data })).sense)).toMatchObject({ asc: 0x26 });

    const sp = modeSelect6(Buffer.from(ctl));
    sp.cdb[1] |= 0x01;
    expect(senseOf((await n.command(0, sp.cdb, { dataOut: sp.data })).sense)).toMatchObject({ asc: 0x24 });

    const truncated = await n.command(0, [0x15, 0x10, 0, 0, 16, 0], { dataOut: Buffer.alloc(2) });
    expect(senseOf(truncated.sense)).toMatchObject({ asc: 0x1a });
  });

  it('turning WCE off flushes the backstore; an unchanged page raises no UA', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    const cache = pagesOf6((await a.command(0, modeSense6(0x08, { dbd: true }))).dataIn!).get(0x08)!;
    const same = modeSelect6(Buffer.from(cache));
    expect((await a.command(0, same.cdb, { dataOut: same.data })).status).toBe(0);
    expect((await b.command(0, [0, 0, 0, 0, 0, 0])).status).toBe(0);
    const off = Buffer.from(cache);
    off[2] &= ~0x04;
    const sel = modeSelect6(off);
    const before = h.store.flushes;
    expect((await a.command(0, sel.cdb, { dataOut: sel.data })).status).toBe(0);
    expect(h.store.flushes).toBe(before + 1);
    const now = pagesOf6((await a.command(0, modeSense6(0x08, { dbd: true }))).dataIn!).get(0x08)!;
    expect(now[2] & 0x04).toBe(0);
  });

  it('a read-only LU and a read-only mapping report WP', async () => {
    const ro = await harness({ caps: { canWrite: false } }).connect();
    expect((await ro.command(0, modeSense6(0x3f))).dataIn![2] & 0x80).toBe(0x80);
    const h = harness();
    h.luns.set(0, h.dev, true);
    const n = await h.connect();
    expect((await n.command(0, modeSense6(0x3f))).dataIn![2] & 0x80).toBe(0x80);
    const w = await n.command(0, write10(0, 1), { dataOut: Buffer.alloc(512) });
    expect(senseOf(w.sense)).toMatchObject({ key: 7, asc: 0x27 });
  });
});
