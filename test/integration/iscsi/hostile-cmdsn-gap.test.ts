// Hostile client (issue 17): many large WRITEs (no immediate data) with high
// CmdSNs behind one missing CmdSN. Nothing may be allocated or asked for
// while they wait for the gap; once it closes, R2Ts go out only for what
// the session's write budget holds, the rest wait (not fail) and go on as
// bytes are released. A second session keeps working throughout.
import { afterEach, describe, expect, it } from 'vitest';
import { Opcode, type Pdu, type R2TPdu, type ScsiResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { sampleUsage } from '../../helpers/proc-usage.js';
import { dataOut, scsiCmd, write10, type RawInitiator } from '../../helpers/raw-iscsi.js';
import { MiB, iscsiStats, loginSession, normalClientRoundTrip, startHostileTarget, usage, type HostileTarget } from './hostile-harness.js';

let target: HostileTarget | undefined;
const open: RawInitiator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.stop();
  target = undefined;
});

const WRITE_BYTES = 4 * MiB;
const BLOCKS = WRITE_BYTES / 512;

/** PDUs that arrive within `ms` (NOP-In pings left out). */
async function drain(c: RawInitiator, ms: number): Promise<Pdu[]> {
  const out: Pdu[] = [];
  const end = Date.now() + ms;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) return out;
    const p = await c.next(left);
    if (p === 'timeout') return out;
    if (p === 'closed') throw new Error('the hostile connection was closed');
    if (p.opcode === Opcode.NOP_IN && p.itt === 0xffffffff) continue;
    out.push(p);
  }
}

const r2tItts = (pdus: Pdu[]): Set<number> => new Set(pdus.filter((p) => p.opcode === Opcode.R2T).map((p) => p.itt));

describe('hostile client: large writes queued behind a CmdSN gap', () => {
  it('holds nothing for them, then solicits only what the write budget allows; the rest wait and go on', async () => {
    const sessionBudget = 8 * MiB;
    target = await startHostileTarget({ sessionWriteBytes: sessionBudget, totalWriteBytes: 24 * MiB });
    const t = target;
    const c = await loginSession(t.port, 'iqn.2026-12.io.lunkit:gap', 0x2001);
    open.push(c);
    const before = usage(t.pid);
    const sampler = sampleUsage(t.pid, 50);

    // CmdSN 1 is the gap; 2..64 fill the rest of the window (depth 64): 252 MiB of writes declared.
    const count = 63;
    for (let i = 0; i < count; i++) scsiCmd(c, { itt: 100 + i, cmdSN: 2 + i, cdb: write10((i % 16) * BLOCKS, BLOCKS), write: WRITE_BYTES });
    const waiting = await drain(c, 1000);
    expect(waiting.filter((p) => p.opcode === Opcode.R2T)).toEqual([]);
    const queued = sampler.stop();
    expect(queued.rssMax - before.rss).toBeLessThan(16 * MiB);
    let stats = await iscsiStats(t);
    expect(stats.totals.writeBytesHeld).toBe(0);

    // Close the gap: all 63 are delivered; R2Ts only for what 8 MiB holds.
    const sampler2 = sampleUsage(t.pid, 50);
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: Buffer.alloc(16) });
    const opened = await drain(c, 1000);
    expect(opened.some((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 1)).toBe(true);
    const solicited = r2tItts(opened);
    expect([...solicited].sort((a, b) => a - b)).toEqual([100, 101]);
    stats = await iscsiStats(t);
    const gap = stats.sessions.find((s) => s.initiatorName.endsWith(':gap'));
    expect(gap?.writeBytesHeld).toBe(sessionBudget);
    expect(stats.totals.writeBytesHeld).toBeLessThanOrEqual(24 * MiB);

    // A well-behaved session is served while the hostile one holds its whole budget.
    const rt = await normalClientRoundTrip(t.port, 4096, 2);
    expect(rt.read).toBe(rt.written);

    // Send the first write's data: it completes, and the next waiting write is solicited.
    const pending: Pdu[] = opened.filter((p) => p.opcode === Opcode.R2T && p.itt === 100);
    const data = Buffer.alloc(WRITE_BYTES, 0x3c);
    let response: ScsiResponsePdu | undefined;
    const later: Pdu[] = [];
    const deadline = Date.now() + 15_000;
    while (!response && Date.now() < deadline) {
      const r = pending.shift() as R2TPdu | undefined;
      if (r) {
        dataOut(c, { itt: 100, ttt: r.targetTransferTag, dataSN: 0, offset: r.bufferOffset, data: data.subarray(r.bufferOffset, r.bufferOffset + r.desiredDataTransferLength) });
        continue;
      }
      const p = await c.next(2000);
      if (p === 'timeout' || p === 'closed') throw new Error(`waiting for the first write to finish: ${p}`);
      if (p.opcode === Opcode.R2T && p.itt === 100) pending.push(p);
      else if (p.opcode === Opcode.SCSI_RESPONSE && p.itt === 100) response = p;
      else later.push(p);
    }
    expect(response?.status).toBe(0);
    later.push(...(await drain(c, 500)));
    expect(r2tItts(later).has(102)).toBe(true);
    const held = sampler2.stop();
    // Two 4 MiB buffers at a time, never 63.
    expect(held.rssMax - before.rss).toBeLessThan(sessionBudget + 24 * MiB);
  }, 60_000);
});
