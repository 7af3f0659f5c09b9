// iscsi:// sources for attach/mount: parsing, session options, password
// redaction, file names; the remote outcome -> backstore failure table
// (src/backstores/iscsi remoteOutcome, through core/errno.ts); the
// `sessions --initiator` table.

import { describe, expect, it } from 'vitest';
import { remoteOutcome } from '../../../src/backstores/iscsi/iscsi.js';
import { BackstoreIoError, errnoToSense } from '../../../src/core/errno.js';
import { SenseReasons, type SenseReason } from '../../../src/core/sense-reasons.js';
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

describe('remote outcome -> backstore failure (the core\'s one map)', () => {
  // [what, status, sense, reason the core reports, errno code for NBD/FUSE]
  const cases: Array<[string, number, Buffer | undefined, SenseReason, string]> = [
    ['MEDIUM ERROR 11/00', 0x02, fixedSense(0x03, 0x11, 0x00), 'MEDIUM_ERROR_READ', 'EIO'],
    ['NOT READY 04/00', 0x02, fixedSense(0x02, 0x04, 0x00), 'NOT_READY_CAUSE_NOT_REPORTABLE', 'EIO'],
    ['ABORTED COMMAND 47/00', 0x02, fixedSense(0x0b, 0x47, 0x00), 'COMMAND_ABORTED_NO_ASC', 'EIO'],
    ['DATA PROTECT 27/07', 0x02, fixedSense(0x07, 0x27, 0x07), 'SPACE_ALLOCATION_FAILED', 'ENOSPC'],
    ['DATA PROTECT 27/00', 0x02, fixedSense(0x07, 0x27, 0x00), 'WRITE_PROTECTED', 'EROFS'],
    ['ILLEGAL REQUEST 21/00', 0x02, fixedSense(0x05, 0x21, 0x00), 'LBA_OUT_OF_RANGE', 'ENOSPC'],
    ['HARDWARE ERROR 44/00', 0x02, fixedSense(0x04, 0x44, 0x00), 'INTERNAL_TARGET_FAILURE', 'EIO'],
    ['RESERVATION CONFLICT', 0x18, undefined, 'WRITE_PROTECTED', 'EROFS'],
    ['CHECK CONDITION without sense', 0x02, undefined, 'LOGICAL_UNIT_COMMUNICATION_FAILURE', 'EIO'],
    ['ACA ACTIVE', 0x30, undefined, 'LOGICAL_UNIT_COMMUNICATION_FAILURE', 'EIO'],
  ];
  for (const [what, status, raw, reason, code] of cases) {
    it(`${what} -> ${reason} (${code})`, () => {
      const sense = raw ? decodeSense(raw) : undefined;
      const e = remoteOutcome('write', status, sense);
      expect(e).toBeInstanceOf(BackstoreIoError);
      expect(e.code).toBe(code);
      expect(e.senseReason).toBe(reason);
      // The core reports that reason, and a code it knows exactly is passed on unchanged.
      expect(errnoToSense(e, 'write')).toBe(reason);
      if (raw && reason !== 'COMMAND_ABORTED_NO_ASC') expect(SenseReasons[reason]).toEqual({ key: raw[2], asc: raw[12], ascq: raw[13] });
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
