// `lunkit sessions` text from sessions.list results (golden text by hand).

import { describe, expect, it } from 'vitest';

import { renderSessions } from '../../../src/cli/commands/sessions.js';

describe('lunkit sessions', () => {
  it('one line per iSCSI session with addresses, digests and commands in flight', () => {
    const text = renderSessions([
      {
        tsih: 1,
        isid: '400001370000',
        initiatorName: 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-perf',
        targetName: 'iqn.2026-01.org.example:t1',
        tpgt: 1,
        type: 'normal',
        connections: [{ cid: 0, remote: '127.0.0.1:40000', local: '127.0.0.1:3260' }],
        cmdsInFlight: 32,
        params: { headerDigest: true, dataDigest: false },
      },
      { tsih: 2, isid: '400001370001', initiatorName: 'iqn.x:y', targetName: '', tpgt: 1, type: 'discovery', connections: [], cmdsInFlight: 0, params: {} },
    ]);
    expect(text).toBe(
      [
        'INITIATOR                                            ISID          TSIH  TARGET/TPG                       ADDRESSES                               DIGESTS(H/D)  IN FLIGHT',
        'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-perf  400001370000  1     iqn.2026-01.org.example:t1/tpg1  cid0 127.0.0.1:40000 -> 127.0.0.1:3260  CRC32C/None   32',
        'iqn.x:y (discovery)                                  400001370001  2     -/tpg1                           -                                       None/None     0',
        '',
      ].join('\n'),
    );
  });

  it('NBD connections in a table of their own; no sessions says so', () => {
    expect(renderSessions([])).toBe('No iSCSI sessions.\n');
    expect(renderSessions([{ fabric: 'nbd', export: 'disk0', address: '127.0.0.1:5555' }])).toBe(
      'NBD EXPORT  ADDRESS         IN FLIGHT\ndisk0       127.0.0.1:5555  0\n',
    );
  });
});
