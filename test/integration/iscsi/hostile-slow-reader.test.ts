// A client that stops reading (issue 17): a reply that completes while the
// socket's queued output is over sendHighWaterBytes keeps its CmdSN slot
// until it is written, so MaxCmdSN does not open for a client that is not
// reading. Once it reads again the slot frees, and since the replies it got
// carried a closed window, a NOP-In (ITT and TTT 0xffffffff) announces the
// new MaxCmdSN; the session goes on.
import { afterEach, describe, expect, it } from 'vitest';
import { Opcode, type NopInPdu, type ScsiCommandPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { encodeBhs } from '../../../src/protocols/iscsi/pdu.js';
import { encodeFrame } from '../../../src/protocols/iscsi/writer.js';
import { seqAdd } from '../../../src/protocols/iscsi/seq.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { RawInitiator, clearUnitAttention, collectRead, read10, scsiCmd } from '../../helpers/raw-iscsi.js';

const MiB = 1024 * 1024;
const READ_BYTES = 16 * MiB;
const BLOCKS = READ_BYTES / 512;

let t: TestTarget | undefined;
const open: RawInitiator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await t?.close();
  t = undefined;
});

describe('a reader that stops reading', () => {
  it('keeps the CmdSN slot of a reply queued while backlogged until it is written, then announces the window with a NOP-In', async () => {
    t = await startIscsiTarget({ lunSizes: [3 * READ_BYTES], attributes: { defaultCmdsnDepth: 2 } });
    t.server.setLimits({ sendHighWaterBytes: 64 * 1024 });
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    await c.login('iqn.2026-12.io.lunkit:slow-reader', t.iqn, { isid: 0x6001, extra: [['MaxRecvDataSegmentLength', '262144']] });
    await clearUnitAttention(c, 1);

    // Three READs in one segment, so all are read before any completes: an
    // immediate one (ITT 10: it takes a slot, not a CmdSN) and CmdSN 1 and 2
    // filling the window (depth 2). The immediate one completes first; the
    // other two complete while its 16 MiB are still queued.
    c.socket.pause();
    const reads = [
      { itt: 10, cmdSN: 1, immediate: true },
      { itt: 1, cmdSN: 1, immediate: false },
      { itt: 2, cmdSN: 2, immediate: false },
    ];
    const frames = reads.flatMap((r, i) =>
      encodeFrame(
        encodeBhs({
          opcode: Opcode.SCSI_COMMAND,
          immediate: r.immediate,
          final: true,
          read: true,
          write: false,
          attr: 1,
          lun: 0,
          itt: r.itt,
          expectedDataTransferLength: READ_BYTES,
          cmdSN: r.cmdSN,
          expStatSN: c.expStatSN,
          cdb: read10(i * BLOCKS, BLOCKS),
        } as unknown as ScsiCommandPdu),
        undefined,
        { headerDigest: false, dataDigest: false },
      ),
    );
    c.writeRaw(Buffer.concat(frames));
    await new Promise((r) => setTimeout(r, 300));
    c.socket.resume();

    const answers = [await collectRead(c, 10), await collectRead(c, 1), await collectRead(c, 2)];
    expect(answers.map((a) => [a.status, a.data.length])).toEqual([
      [0, READ_BYTES],
      [0, READ_BYTES],
      [0, READ_BYTES],
    ]);
    // The replies of CmdSN 1 and 2 were queued behind unsent data, so each
    // still counted its command: the initiator was told a closed window.
    for (const r of answers.slice(1)) {
      const last = r.dataIns[r.dataIns.length - 1];
      expect(seqAdd(last.maxCmdSN, 1)).toBe(last.expCmdSN);
    }

    // Written now: a NOP-In that expects no answer opens the window.
    const p = await c.next(3000);
    expect(p).not.toBe('timeout');
    const nop = p as NopInPdu;
    expect([nop.opcode, nop.itt, nop.targetTransferTag]).toEqual([Opcode.NOP_IN, 0xffffffff, 0xffffffff]);
    // Sent when CmdSN 1's reply was written (CmdSN 2's was still queued): one slot open.
    expect([nop.expCmdSN, nop.maxCmdSN]).toEqual([3, 3]);

    scsiCmd(c, { itt: 3, cmdSN: 3, cdb: read10(0, 8), read: 4096 });
    const third = await collectRead(c, 3);
    expect(third.status).toBe(0);
  }, 30_000);
});
