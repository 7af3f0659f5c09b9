// Hostile client (issue 17): an ERL 1 session that never advances ExpStatSN.
// Every status and the read data behind it is kept for SNACK until
// acknowledged; past limits.iscsi.retainedBytesPerConnection the connection
// is dropped (logged once), not the daemon, and other sessions go on.
import { afterEach, describe, expect, it } from 'vitest';
import { Opcode, type ScsiCommandPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { read10, type RawInitiator } from '../../helpers/raw-iscsi.js';
import { KiB, MiB, NORMAL_KEYS, iscsiStats, loginSession, normalClientRoundTrip, sleep, startHostileTarget, usage, type HostileTarget } from './hostile-harness.js';

let target: HostileTarget | undefined;
const open: RawInitiator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.stop();
  target = undefined;
});

describe('hostile client: ERL 1 session that never acknowledges status', () => {
  it('drops the connection once its retained bytes pass the limit, logs it once, and keeps serving others', async () => {
    const limit = 1 * MiB;
    const readBytes = 64 * KiB;
    target = await startHostileTarget({ retainedBytesPerConnection: limit }, { parameters: { ErrorRecoveryLevel: '1' } });
    const t = target;
    const c = await loginSession(t.port, 'iqn.2026-12.io.lunkit:erl1', 0x4001, [...NORMAL_KEYS, ['ErrorRecoveryLevel', '1']]);
    open.push(c);
    const before = usage(t.pid);
    const frozenExpStatSN = c.expStatSN;

    // One READ at a time, each answered and read by us, none acknowledged.
    let answered = 0;
    let closed = false;
    for (let i = 0; i < 100 && !closed; i++) {
      c.send<ScsiCommandPdu>({
        opcode: Opcode.SCSI_COMMAND,
        immediate: false,
        final: true,
        read: true,
        write: false,
        attr: 1,
        lun: 0,
        itt: 10 + i,
        expectedDataTransferLength: readBytes,
        cmdSN: 1 + i,
        expStatSN: frozenExpStatSN,
        cdb: read10(i * 128, 128),
      } as unknown as ScsiCommandPdu);
      for (;;) {
        const p = await c.next(3000);
        if (p === 'closed') {
          closed = true;
          break;
        }
        if (p === 'timeout') throw new Error(`no answer to READ ${i}`);
        if ((p.opcode === Opcode.DATA_IN && p.statusPresent) || p.opcode === Opcode.SCSI_RESPONSE) {
          answered++;
          break;
        }
      }
    }
    expect(closed).toBe(true);
    // About limit / readBytes reads fit; the next one goes over.
    expect(answered).toBeGreaterThanOrEqual(Math.floor(limit / readBytes) - 2);
    expect(answered).toBeLessThanOrEqual(Math.ceil(limit / readBytes) + 1);

    const stats = await iscsiStats(t);
    expect(stats.totals.retentionDrops).toBe(1);
    expect(stats.sessions.some((s) => s.initiatorName.endsWith(':erl1'))).toBe(false);
    await sleep(100);
    const log = t.daemon.stdout() + t.daemon.stderr();
    expect(log.match(/retainedBytesPerConnection/g)?.length).toBe(1);

    const rt = await normalClientRoundTrip(t.port, 8192, 4);
    expect(rt.read).toBe(rt.written);
    expect(usage(t.pid).rss - before.rss).toBeLessThan(32 * MiB);
  }, 60_000);
});
