// Hostile client (issue 17): a normal session sends NOP-Outs with 64 KiB of
// ping data and never reads the echoes. The daemon must stop reading once
// its queued output passes limits.iscsi.sendHighWaterBytes, so the client
// stalls and the daemon's memory stays flat; a second session keeps working.
import { afterEach, describe, expect, it } from 'vitest';
import { Opcode, type NopOutPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { sampleUsage } from '../../helpers/proc-usage.js';
import type { RawInitiator } from '../../helpers/raw-iscsi.js';
import { KiB, MiB, iscsiStats, loginSession, normalClientRoundTrip, startHostileTarget, usage, type HostileTarget } from './hostile-harness.js';

let target: HostileTarget | undefined;
const open: RawInitiator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.stop();
  target = undefined;
});

/** Writes `bytes` of NOP-Outs or until the socket stays full for `stallMs`; returns what went out and whether it stalled. */
async function flood(c: RawInitiator, bytes: number, stallMs: number): Promise<{ sent: number; stalled: boolean }> {
  const ping = Buffer.alloc(64 * KiB, 0xa5);
  let sent = 0;
  let itt = 1;
  while (sent < bytes) {
    c.send<NopOutPdu>({
      opcode: Opcode.NOP_OUT,
      immediate: true,
      final: true,
      itt: itt++,
      lun: 0,
      targetTransferTag: 0xffffffff,
      cmdSN: c.cmdSN,
      expStatSN: c.expStatSN,
      data: ping,
    } as unknown as NopOutPdu);
    sent += ping.length;
    if (c.socket.writableLength > 1 * MiB) {
      const drained = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), stallMs);
        c.socket.once('drain', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      if (!drained) return { sent, stalled: true };
    }
  }
  return { sent, stalled: false };
}

describe('hostile client: NOP-Out flood that never reads', () => {
  it('stalls the client at the send high-water mark, the daemon stays flat and a second session verifies its data', async () => {
    const sendHighWater = 256 * KiB;
    target = await startHostileTarget({ sendHighWaterBytes: sendHighWater });
    const t = target;
    const hostile = await loginSession(t.port, 'iqn.2026-12.io.lunkit:nop-flood', 0x1001);
    open.push(hostile);
    const before = usage(t.pid);
    const sampler = sampleUsage(t.pid, 50);
    hostile.socket.pause(); // never read an echo again
    const offered = 256 * MiB;
    const r = await flood(hostile, offered, 1500);
    const seen = sampler.stop();

    // Without backpressure every echo is held in the daemon (256 MiB); with it
    // the daemon stops reading and the client cannot get rid of its data.
    expect(r.stalled).toBe(true);
    expect(r.sent).toBeLessThan(offered / 4);
    expect(seen.rssMax - before.rss).toBeLessThan(48 * MiB);

    const stats = await iscsiStats(t);
    expect(stats.totals.readPausesBackpressure).toBeGreaterThanOrEqual(1);
    const flooding = stats.sessions.find((s) => s.initiatorName.endsWith(':nop-flood'));
    expect(flooding?.connections[0]?.readPaused).toBe(true);

    // Another session is served meanwhile.
    const rt = await normalClientRoundTrip(t.port, 1024, 1);
    expect(rt.read).toBe(rt.written);
    const after = usage(t.pid);
    expect(after.fds - before.fds).toBeLessThanOrEqual(4);
  }, 60_000);
});
