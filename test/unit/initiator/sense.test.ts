// Sense decoding (SPC-4 §4.5) from hand-written bytes, and parameter data parsers.
import { describe, expect, it } from 'vitest';
import { decodeSense, formatSense } from '../../../src/initiator/sense.js';
import { parseDeviceIdentification, parsePrKeys, parsePrReservation, parseReportLuns, parseStandardInquiry, unmapParameterList } from '../../../src/initiator/scsi.js';

describe('decodeSense', () => {
  it('fixed format with VALID information and sense-key specific field', () => {
    const raw = Buffer.from([0xf0, 0, 0x05, 0x00, 0x00, 0x10, 0x00, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xc0, 0x00, 0x02]);
    const s = decodeSense(raw);
    expect(s).toMatchObject({ format: 'fixed', current: true, key: 5, keyName: 'ILLEGAL REQUEST', asc: 0x24, ascq: 0, information: 0x1000n });
    expect(s?.senseKeySpecific).toEqual(Buffer.from([0xc0, 0x00, 0x02]));
    expect(formatSense(s!)).toBe('ILLEGAL REQUEST 24h/00h');
  });

  it('descriptor format with an information descriptor', () => {
    const raw = Buffer.from([0x72, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0x00, 0x0a, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    expect(decodeSense(raw)).toMatchObject({ format: 'descriptor', key: 3, asc: 0x11, ascq: 0, information: 0x1234n, descriptors: [{ type: 0 }] });
  });

  it('deferred and unknown formats', () => {
    expect(decodeSense(Buffer.from([0x73, 0x06, 0x29, 0x00, 0, 0, 0, 0]))).toMatchObject({ current: false, key: 6, asc: 0x29 });
    expect(decodeSense(Buffer.from([0x7f, 0, 0, 0]))).toBeUndefined();
    expect(decodeSense(Buffer.from([0x70]))).toBeUndefined();
  });
});

describe('parameter data', () => {
  it('REPORT LUNS', () => {
    const d = Buffer.from([0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x05, 0, 0, 0, 0, 0, 0]);
    expect(parseReportLuns(d)).toEqual([0, 5]);
  });

  it('PR IN READ KEYS and READ RESERVATION', () => {
    const keys = Buffer.from([0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    expect(parsePrKeys(keys)).toEqual({ generation: 3, keys: [0x1234n] });
    const res = Buffer.alloc(24);
    res.writeUInt32BE(4, 0);
    res.writeUInt32BE(16, 4);
    res.writeBigUInt64BE(0xabn, 8);
    res[21] = 0x01;
    expect(parsePrReservation(res)).toEqual({ generation: 4, reservation: { key: 0xabn, scope: 0, type: 1 } });
    expect(parsePrReservation(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]))).toEqual({ generation: 4, reservation: undefined });
  });

  it('standard INQUIRY and VPD 83h', () => {
    const inq = Buffer.alloc(36, 0x20);
    inq.set([0x00, 0x00, 0x06, 0x12, 31, 0, 0, 0x02], 0);
    inq.write('LUNKIT  ', 8, 'latin1');
    inq.write('disk0', 16, 'latin1');
    inq.write('0001', 32, 'latin1');
    expect(parseStandardInquiry(inq)).toMatchObject({ deviceType: 0, version: 6, responseDataFormat: 2, hiSup: true, cmdQue: true, vendor: 'LUNKIT', product: 'disk0', revision: '0001' });
    const vpd = Buffer.from([0, 0x83, 0, 12, 0x01, 0x03, 0, 8, 0x60, 1, 2, 3, 4, 5, 6, 7]);
    expect(parseDeviceIdentification(vpd)).toMatchObject([{ codeSet: 1, designatorType: 3, association: 0, text: '6001020304050607' }]);
  });

  it('UNMAP parameter list', () => {
    expect(unmapParameterList([{ lba: 0x10, blocks: 8 }])).toEqual(
      Buffer.from([0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0]),
    );
  });
});
