// Which I_T nexuses see the unit attention of a reset (SAM-5 §5.14, §6.3):
// those that exist when it happens. libiscsi's PreventAllow suite runs
// WarmReset, ColdReset, LUNReset and then 2ITNexuses, whose second path must
// not still hold the LUN reset's 29/03 from a session the cold reset ended.
import { describe, expect, it } from 'vitest';
import { TUR, harness, senseOf } from './helpers.js';

describe('reset unit attentions and nexus lifetime', () => {
  it('TARGET COLD RESET ends every other nexus; a later LUN RESET does not reach nexuses opened after it', async () => {
    const h = harness();
    const a = await h.connect({ isid: 'a00000000001' });
    const b = await h.connect({ isid: 'b00000000001' });

    expect(await a.tmf('target-cold-reset', 0)).toBe('function-complete');
    // RFC 7143 §11.5.1: a cold reset terminates all sessions. The issuer's own
    // transport is dropped by its fabric after the response; the rest by the core.
    expect(b.closedByCore).toBeDefined();
    expect(a.closedByCore).toBeUndefined();
    a.close();

    // The initiators log in again; the first one resets the LU.
    const a2 = await h.connect({ isid: 'a00000000001' });
    expect(await a2.tmf('lun-reset', 0)).toBe('function-complete');
    const r = await a2.command(0, TUR);
    expect(senseOf(r.sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0x03 });
    expect((await a2.command(0, TUR)).status).toBe(0);

    // A nexus created after the reset reports POWER ON once, and nothing else.
    const b2 = h.fabric.connect({ luns: h.luns, isid: 'b00000000001' });
    const first = await b2.command(0, TUR);
    expect(senseOf(first.sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0x00 });
    for (let i = 0; i < 3; i++) expect((await b2.command(0, TUR)).status).toBe(0);
  });

  it('a LUN RESET reaches every existing nexus once, including the issuer, with the newest reset superseding older ones', async () => {
    const h = harness();
    const a = await h.connect();
    const b = await h.connect();
    expect(await a.tmf('target-warm-reset', 0)).toBe('function-complete');
    expect(await a.tmf('lun-reset', 0)).toBe('function-complete');
    for (const n of [a, b]) {
      expect(senseOf((await n.command(0, TUR)).sense)).toMatchObject({ key: 6, asc: 0x29, ascq: 0x03 });
      expect((await n.command(0, TUR)).status).toBe(0);
    }
  });
});
