// iscsi:// sources for attach/mount: parsing, session options, password
// redaction, file names; the remote sense -> backstore error code table
// (iscsi-backstore.ts remoteFailure); the `sessions --initiator` table.

import { describe, expect, it } from 'vitest';
import { remoteFailure } from '../../../src/attach/iscsi-backstore.js';
import { redactIscsiUrl } from '../../../src/attach/redact.js';
import { defaultFileName, describeSource, parseSource, withIscsiOptions } from '../../../src/attach/source.js';
import { renderHeldSessions } from '../../../src/cli/commands/sessions.js';
import { decodeSense } from '../../../src/initiator/sense.js';

/** Fixed-format sense (SPC-4 §4.5.3), written out byte by byte. */
function fixedSense(key: number, asc: number, ascq: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key;
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  return b;
}

describe('iscsi:// attach sources', () => {
  it('parses iscsi:// and takes --connections/--erl only for it', () => {
    const s = parseSource('iscsi://alice%secret@10.0.0.5:3261/iqn.2003-01.org.example:disk1/3');
    expect(s).toEqual({ kind: 'iscsi', url: 'iscsi://alice%secret@10.0.0.5:3261/iqn.2003-01.org.example:disk1/3' });
    expect(withIscsiOptions(s, { connections: 4, erl: 2 })).toMatchObject({ kind: 'iscsi', connections: 4, errorRecoveryLevel: 2 });
    expect(withIscsiOptions(s, {})).toBe(s);
    expect(() => withIscsiOptions(parseSource('/tmp/disk.img'), { connections: 2 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(() => withIscsiOptions(s, { connections: 0 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(() => withIscsiOptions(s, { erl: 3 })).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_SOURCE' }));
    expect(parseSource('lunkit:disk0')).toEqual({ kind: 'daemon-lun', backstore: 'disk0' });
  });

  it('never shows the CHAP passwords', () => {
    expect(redactIscsiUrl('iscsi://alice%secret@h/iqn.x:y/1')).toBe('iscsi://alice:***@h/iqn.x:y/1');
    expect(redactIscsiUrl('iscsi://alice:secret@h/iqn.x:y/1?target_user=t&target_password=p2')).toBe('iscsi://alice:***@h/iqn.x:y/1?target_user=t&target_password=***');
    expect(redactIscsiUrl('iscsi://h:3260/iqn.x:y/1')).toBe('iscsi://h:3260/iqn.x:y/1');
    expect(describeSource(parseSource('iscsi://alice%secret@h/iqn.x:y/1'))).not.toContain('secret');
  });

  it('names the file after the target name and LUN', () => {
    expect(defaultFileName(parseSource('iscsi://h/iqn.2003-01.org.example:disk1/3'))).toBe('disk1-lun3');
    expect(defaultFileName(parseSource('iscsi://h/iqn.2003-01.org.example/0'))).toBe('example-lun0');
    expect(defaultFileName(parseSource('iscsi://h/'))).toBe('disk');
  });
});

describe('remote outcome -> backstore error code', () => {
  const cases: Array<[string, number, Buffer | undefined, string]> = [
    ['MEDIUM ERROR 11/00', 0x02, fixedSense(0x03, 0x11, 0x00), 'EIO'],
    ['NOT READY 04/00', 0x02, fixedSense(0x02, 0x04, 0x00), 'EIO'],
    ['ABORTED COMMAND', 0x02, fixedSense(0x0b, 0x47, 0x00), 'EIO'],
    ['DATA PROTECT 27/07', 0x02, fixedSense(0x07, 0x27, 0x07), 'ENOSPC'],
    ['DATA PROTECT 27/00', 0x02, fixedSense(0x07, 0x27, 0x00), 'EROFS'],
    ['ILLEGAL REQUEST 21/00', 0x02, fixedSense(0x05, 0x21, 0x00), 'EREMOTEIO'],
    ['HARDWARE ERROR 44/00', 0x02, fixedSense(0x04, 0x44, 0x00), 'EREMOTEIO'],
    ['RESERVATION CONFLICT', 0x18, undefined, 'EACCES'],
    ['CHECK CONDITION without sense', 0x02, undefined, 'EIO'],
    ['ACA ACTIVE', 0x30, undefined, 'EIO'],
  ];
  for (const [what, status, raw, code] of cases) {
    it(`${what} -> ${code}`, () => {
      const sense = raw ? decodeSense(raw) : undefined;
      const e = remoteFailure('write', status, sense);
      expect(e.code).toBe(code);
      expect(e.remoteStatus).toBe(status);
      if (raw) expect(e.remoteSense).toEqual({ key: raw[2], asc: raw[12], ascq: raw[13] });
    });
  }
});

describe('lunkit sessions --initiator', () => {
  it('prints one line per held session', () => {
    const text = renderHeldSessions([
      {
        target: 'iqn.x:y',
        portal: '10.0.0.5:3260',
        lun: 1,
        isid: '80123456789a',
        tsih: 0x12,
        erl: 2,
        state: 'recovering',
        reinstatements: 1,
        connectionRecoveries: 7,
        connections: [
          { cid: 0, state: 'active', local: '10.0.0.1:40000', remote: '10.0.0.5:3260' },
          { cid: 1, remote: '10.0.0.5:3260' },
          { cid: 2, state: 'failed', local: '10.0.0.1:40002', remote: '10.0.0.5:3260' },
        ],
        inFlight: 0,
        attachId: 'a',
        pid: 1,
        file: '/run/lunkit/attach/a/y-lun1',
        since: '2026-01-01T00:00:00Z',
      },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0].split(/\s{2,}/)).toEqual(['TARGET/LUN', 'PORTAL', 'TSIH', 'ISID', 'ERL', 'STATE', 'CONNECTIONS', 'CONN RECOVERIES', 'REINSTATEMENTS', 'FILE']);
    const cells = lines[1].split(/\s{2,}/);
    expect(cells).toEqual([
      'iqn.x:y/1',
      '10.0.0.5:3260',
      '0x0012',
      '80123456789a',
      '2',
      'recovering',
      'cid0 10.0.0.1:40000->10.0.0.5:3260, cid1 ?->10.0.0.5:3260, cid2 10.0.0.1:40002->10.0.0.5:3260 (failed)',
      '7',
      '1',
      '/run/lunkit/attach/a/y-lun1',
    ]);
    expect(renderHeldSessions([])).toBe('No iSCSI sessions held by lunkit attach.\n');
  });
});
