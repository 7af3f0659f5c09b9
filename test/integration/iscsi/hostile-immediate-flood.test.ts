// Hostile client (issue 17): 1,000 immediate READs at once. Immediate
// commands bypass the CmdSN window, so their number in flight is capped by
// limits.iscsi.maxImmediateCommands: the excess gets Reject reason 0x06
// "Immediate command reject - too many immediate commands" (RFC 7143
// §11.17.1), the earlier ones are answered. The delay filter keeps the reads
// in flight so the cap is what decides.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBhs } from '../../../src/protocols/iscsi/pdu.js';
import { encodeFrame } from '../../../src/protocols/iscsi/writer.js';
import { Opcode, type ScsiCommandPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { read10, type RawInitiator } from '../../helpers/raw-iscsi.js';
import { iscsiStats, loginSession, normalClientRoundTrip, startHostileTarget, usage, MiB, type HostileTarget } from './hostile-harness.js';

let target: HostileTarget | undefined;
const open: RawInitiator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.stop();
  target = undefined;
});

const IMMEDIATE_COMMAND_REJECT = 0x06;

describe('hostile client: immediate command flood', () => {
  it('answers up to maxImmediateCommands in flight and rejects the rest with reason 0x06', async () => {
    const cap = 16;
    target = await startHostileTarget({ maxImmediateCommands: cap }, { delayRead: '400ms' });
    const t = target;
    const c = await loginSession(t.port, 'iqn.2026-12.io.lunkit:immediate', 0x3001);
    open.push(c);
    const before = usage(t.pid);

    // All 1,000 in one write: they arrive while the first ones are still held by the delay filter.
    const n = 1000;
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const pdu = {
        opcode: Opcode.SCSI_COMMAND,
        immediate: true,
        final: true,
        read: true,
        write: false,
        attr: 1,
        lun: 0,
        itt: i + 1,
        expectedDataTransferLength: 512,
        cmdSN: c.cmdSN,
        expStatSN: c.expStatSN,
        cdb: read10(i, 1),
      } as unknown as ScsiCommandPdu;
      frames.push(...encodeFrame(encodeBhs(pdu), undefined, { headerDigest: false, dataDigest: false }));
    }
    c.writeRaw(Buffer.concat(frames));

    const answered = new Set<number>();
    const rejected = new Set<number>();
    const otherReasons: number[] = [];
    const deadline = Date.now() + 20_000;
    while (answered.size + rejected.size < n && Date.now() < deadline) {
      const p = await c.next(5000);
      if (p === 'timeout' || p === 'closed') break;
      if (p.opcode === Opcode.REJECT) {
        if (p.reason !== IMMEDIATE_COMMAND_REJECT) otherReasons.push(p.reason);
        rejected.add(p.data.readUInt32BE(16)); // the rejected header's ITT
      } else if ((p.opcode === Opcode.DATA_IN && p.statusPresent) || p.opcode === Opcode.SCSI_RESPONSE) {
        expect(p.status).toBe(0);
        answered.add(p.itt);
      }
    }
    expect(otherReasons).toEqual([]);
    expect(answered.size + rejected.size).toBe(n);
    // The first `cap` were taken; most of the rest found the cap full.
    for (let itt = 1; itt <= cap; itt++) expect(answered.has(itt)).toBe(true);
    expect(rejected.size).toBeGreaterThanOrEqual(n / 2);
    for (const itt of answered) expect(rejected.has(itt)).toBe(false);

    const stats = await iscsiStats(t);
    expect(stats.totals.rejects.IMMEDIATE_COMMAND_REJECT).toBe(rejected.size);
    expect(stats.totals.immediateInFlight).toBe(0);

    // The session is still usable, and so is a second one.
    const rt = await normalClientRoundTrip(t.port, 2048, 3);
    expect(rt.read).toBe(rt.written);
    expect(usage(t.pid).rss - before.rss).toBeLessThan(32 * MiB);
  }, 60_000);
});
