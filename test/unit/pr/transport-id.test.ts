import { describe, expect, it } from 'vitest';
import { encodeTransportId, parseTransportId } from '../../../src/core/pr-transport-id.js';
import { prTargetMatches } from '../../../src/core/pr.js';

/** Naive builder: header + ASCII text + NUL, zero padded to `padded` bytes. */
function tid(byte0: number, text: string, padded: number): Buffer {
  const b = Buffer.alloc(4 + padded);
  b[0] = byte0;
  b.writeUInt16BE(padded, 2);
  b.write(text, 4, 'ascii');
  return b;
}

describe('iSCSI TransportID (SPC-4 §7.6.4.6)', () => {
  it('parses format 01b (initiator port) and format 00b (every port of a name)', () => {
    const p1 = parseTransportId(tid(0x45, 'iqn.a,i,0x23d000000001', 24), 0);
    expect(p1).toEqual({ ok: true, tid: { protocolId: 5, initiatorName: 'iqn.a', initiatorPortId: 'iqn.a,i,0x23d000000001' }, length: 28 });
    const p0 = parseTransportId(Buffer.concat([Buffer.alloc(3), tid(0x05, 'iqn.b', 20)]), 3);
    expect(p0).toEqual({ ok: true, tid: { protocolId: 5, initiatorName: 'iqn.b', initiatorPortId: 'iqn.b,i,*' }, length: 24 });
  });

  it('rejects other protocols, formats, lengths and malformed text', () => {
    expect(parseTransportId(tid(0x46, 'iqn.a', 20), 0).ok).toBe(false); // protocol 6 (SAS)
    expect(parseTransportId(tid(0x85, 'iqn.a', 20), 0).ok).toBe(false); // format 10b
    expect(parseTransportId(tid(0x45, 'iqn.a', 20), 0).ok).toBe(false); // format 01b without ",i,0x"
    expect(parseTransportId(tid(0x45, 'iqn.a,i,0xzz', 20), 0).ok).toBe(false);
    const odd = tid(0x05, 'iqn.a', 20);
    odd.writeUInt16BE(18, 2);
    expect(parseTransportId(odd, 0).ok).toBe(false);
    expect(parseTransportId(tid(0x05, 'iqn.a', 20).subarray(0, 16), 0).ok).toBe(false); // truncated
    expect(parseTransportId(Buffer.alloc(24, 0x41).fill(0x05, 0, 1).fill(0, 1, 2).fill(20, 3, 4), 0).ok).toBe(false); // no NUL
  });

  it('encodes format 01b for a port and 00b for a name, NUL terminated, padded to 4, at least 20', () => {
    expect(encodeTransportId(5, 'iqn.a,i,0x1')).toEqual(tid(0x45, 'iqn.a,i,0x1', 20));
    expect(encodeTransportId(5, 'iqn.b,i,*')).toEqual(tid(0x05, 'iqn.b', 20));
    const long = 'iqn.2024-01.org.example:some-long-initiator-name,i,0x23d000000001';
    expect(encodeTransportId(5, long)).toEqual(tid(0x45, long, 68));
  });

  it('prTargetMatches applies the ALL_TG_PT and any-ISID wildcards, case-insensitively', () => {
    const id = { initiatorPortId: 'iqn.a,i,0x23D0', targetPortId: 'iqn.t,t,0x1' };
    expect(prTargetMatches({ initiatorPortId: 'iqn.a,i,0x23d0', targetPortId: 'iqn.t,t,0x1' }, id)).toBe(true);
    expect(prTargetMatches({ initiatorPortId: 'iqn.a,i,0x23d0', targetPortId: '*' }, id)).toBe(true);
    expect(prTargetMatches({ initiatorPortId: 'iqn.a,i,*', targetPortId: 'iqn.t,t,0x1' }, id)).toBe(true);
    expect(prTargetMatches({ initiatorPortId: 'iqn.a,i,0x23d0', targetPortId: 'iqn.t,t,0x2' }, id)).toBe(false);
    expect(prTargetMatches({ initiatorPortId: 'iqn.ab,i,*', targetPortId: '*' }, id)).toBe(false);
  });
});
