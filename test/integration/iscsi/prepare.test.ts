// The prepare step over a real connection: a write the core refuses (LBA out
// of range, a transfer over the core's limit) gets CHECK CONDITION once its
// unsolicited data has been read and dropped, no data buffer is taken from
// the connection's pool, and the connection goes on serving commands.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RawInitiator, clearUnitAttention, collectRead, dataOut, nextPdu, read10, scsiCmd, write10 } from '../../helpers/raw-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { BufferPool } from '../../../src/util/buffer-pool.js';
import { Opcode, type ScsiResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';

const INI = 'iqn.2024-01.org.lunkit.test:prepare';
const UNSOLICITED = 0xffffffff;
const KEYS: Array<[string, string]> = [
  ['InitialR2T', 'No'],
  ['ImmediateData', 'Yes'],
  ['FirstBurstLength', '65536'],
  ['MaxBurstLength', '262144'],
];

function write16(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x8a;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

/** Sense key and ASC of a SCSI Response's sense data (2-byte length first). */
function senseOf(p: ScsiResponsePdu): [number, number] {
  const s = p.data.subarray(2);
  return [s[2] & 0x0f, s[12]];
}

describe('iSCSI prepare step (write_pending) over a connection', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];

  beforeAll(async () => {
    // 1 MiB LUN of 512-byte blocks: LBA 2048 and beyond are out of range.
    t = await startIscsiTarget({ lunSizes: [1024 * 1024], parameters: { InitialR2T: 'No', FirstBurstLength: '65536' } });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a refused write takes no data buffer, its unsolicited data is dropped, and the connection carries on', async () => {
    const lease = vi.spyOn(BufferPool.prototype, 'lease');
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    await c.login(INI, t.iqn, { isid: 0x11, extra: KEYS });
    await clearUnitAttention(c, 1);

    // WRITE(10) of 16 KiB at LBA 4096 (beyond the end): 8 KiB immediate, 8 KiB unsolicited Data-Out.
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write10(4096, 32), write: 16384, data: Buffer.alloc(8192, 1), final: false });
    dataOut(c, { itt: 1, ttt: UNSOLICITED, dataSN: 0, offset: 8192, data: Buffer.alloc(8192, 2), final: true });
    const refused = (await nextPdu(c)) as ScsiResponsePdu;
    expect(refused.opcode).toBe(Opcode.SCSI_RESPONSE);
    expect(refused.itt).toBe(1);
    expect(refused.status).toBe(0x02);
    expect(senseOf(refused)).toEqual([0x05, 0x21]); // ILLEGAL REQUEST, LBA OUT OF RANGE
    expect(lease).not.toHaveBeenCalled();

    // A write the core takes, then reading it back, on the same connection.
    const data = Buffer.alloc(16384);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    scsiCmd(c, { itt: 2, cmdSN: 2, cdb: write10(8, 32), write: 16384, data: data.subarray(0, 8192), final: false });
    dataOut(c, { itt: 2, ttt: UNSOLICITED, dataSN: 0, offset: 8192, data: data.subarray(8192), final: true });
    const ok = (await nextPdu(c)) as ScsiResponsePdu;
    expect([ok.opcode, ok.itt, ok.status]).toEqual([Opcode.SCSI_RESPONSE, 2, 0]);
    expect(lease).toHaveBeenCalledTimes(1);
    scsiCmd(c, { itt: 3, cmdSN: 3, cdb: read10(8, 32), read: 16384 });
    const back = await collectRead(c, 3);
    expect(back.status).toBe(0);
    expect(back.data.equals(data)).toBe(true);
  });

  it('an Expected Data Transfer Length over the core limit gets its CHECK CONDITION (no Reject), data dropped', async () => {
    const lease = vi.spyOn(BufferPool.prototype, 'lease');
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    await c.login(INI, t.iqn, { isid: 0x12, extra: KEYS });
    await clearUnitAttention(c, 1);

    // 256 MiB announced (the fabric's old cap was 128 MiB; the core's is 32 MiB).
    const blocks = (256 * 1024 * 1024) / 512;
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write16(0, blocks), write: blocks * 512, data: Buffer.alloc(4096, 3), final: false });
    dataOut(c, { itt: 1, ttt: UNSOLICITED, dataSN: 0, offset: 4096, data: Buffer.alloc(65536 - 4096, 4), final: true });
    const refused = (await nextPdu(c)) as ScsiResponsePdu;
    expect([refused.opcode, refused.itt, refused.status]).toEqual([Opcode.SCSI_RESPONSE, 1, 0x02]);
    expect(senseOf(refused)[0]).toBe(0x05);
    expect(lease).not.toHaveBeenCalled();

    scsiCmd(c, { itt: 2, cmdSN: 2, cdb: read10(0, 8), read: 4096 });
    expect((await collectRead(c, 2)).status).toBe(0);
  });
});
