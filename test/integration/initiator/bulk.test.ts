// 64 MiB of random data written and read back byte-identically with 32
// commands in flight, against the lunkit target, with and without digests
// and immediate data (R2T-driven Data-Out, unsolicited Data-Out, Data-In
// reassembly across many PDUs).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { IscsiSession, read16, testUnitReady, write16, type SessionOptions } from './api.js';
import { inFlightPool } from './workload.js';

const SIZE = 64 << 20;
const IO = 1 << 20;
const DEPTH = 32;

describe('initiator bulk I/O against the lunkit target', () => {
  let t: TestTarget;
  let image: Buffer;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [SIZE], attributes: { defaultCmdsnDepth: 64 } });
    image = randomBytes(SIZE);
  });
  afterAll(async () => {
    await t?.close();
  });

  const variants: Array<[string, Partial<SessionOptions>]> = [
    ['no digests, immediate data, unsolicited Data-Out', { immediateData: true, initialR2T: false }],
    ['header+data digests, no immediate data, InitialR2T', { headerDigest: true, dataDigest: true, immediateData: false, initialR2T: true }],
    ['digests, immediate data, small PDUs (MaxRecvDataSegmentLength 8192)', { headerDigest: true, dataDigest: true, immediateData: true, initialR2T: true, maxRecvDataSegmentLength: 8192 }],
  ];

  for (const [name, keys] of variants) {
    it(`64 MiB random write + read back: ${name}`, async () => {
      const s = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, ...keys });
      expect(s.params.headerDigest).toBe(keys.headerDigest === true);
      expect(s.params.immediateData).toBe(keys.immediateData);
      await testUnitReady(s, 0);
      // A fresh pattern per variant so a stale image cannot pass.
      const salt = randomBytes(1)[0] | 1;
      const src = Buffer.from(image.map((b) => b ^ salt));
      let maxInFlight = 0;
      await inFlightPool(SIZE / IO, DEPTH, async (i) => {
        const p = write16(s, 0, (i * IO) / 512, src.subarray(i * IO, (i + 1) * IO), { blockSize: 512 });
        maxInFlight = Math.max(maxInFlight, s.inFlight);
        const r = await p;
        expect(r.ok).toBe(true);
      });
      expect(maxInFlight).toBe(DEPTH);
      const back = Buffer.alloc(SIZE);
      await inFlightPool(SIZE / IO, DEPTH, async (i) => {
        const r = await read16(s, 0, (i * IO) / 512, IO / 512, { blockSize: 512, into: back.subarray(i * IO, (i + 1) * IO) });
        expect(r.ok && r.value.length).toBe(IO);
      });
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(src).digest('hex'));
      await s.logout();
    });
  }
});
