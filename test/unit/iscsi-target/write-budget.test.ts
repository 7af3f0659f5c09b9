// Write data budgets (write-budget.ts) on their own and through ScsiTask:
// a write over budget waits (no buffer, no R2T) and goes on in order once
// bytes are released; early data is copied and counted; a reply queued while
// the socket is backlogged keeps its CmdSN slot until written; ERL >= 1
// retention counts its bytes.
import { describe, expect, it } from 'vitest';
import { ScsiTask } from '../../../src/fabrics/iscsi/scsi-command.js';
import { ServerWriteBudget, SessionWriteBudget, type BudgetWaiter } from '../../../src/fabrics/iscsi/write-budget.js';
import { StatusRetention } from '../../../src/fabrics/iscsi/retention.js';
import { Opcode } from '../../../src/protocols/iscsi/pdu-types.js';
import { RESERVED, cmd, dataOut, r2ts, setup } from './task-harness.js';

const KiB = 1024;

function budgets(session: number, total: number, sessions = 1): { server: ServerWriteBudget; s: SessionWriteBudget[] } {
  const server = new ServerWriteBudget(() => ({ sessionWriteBytes: session, totalWriteBytes: total }));
  return { server, s: Array.from({ length: sessions }, () => new SessionWriteBudget(server)) };
}

/** A waiter wanting `n` bytes, recording grants. */
function waiter(n: number, log: string[], name: string): BudgetWaiter & { done: boolean } {
  const w = {
    done: false,
    chargedBytes: 0,
    wantedBytes: () => (w.done ? -1 : n),
    granted: (got: number) => {
      log.push(`${name}:${got}`);
      w.done = true;
    },
  };
  return w;
}

describe('SessionWriteBudget / ServerWriteBudget', () => {
  it('reserves within the session budget, queues beyond it, and grants in FIFO order on release', () => {
    const { server, s } = budgets(100, 1000);
    const log: string[] = [];
    const [b] = s;
    expect(b.reserve(60, waiter(60, log, 'a'))).toBe(true);
    expect(b.reserve(50, waiter(50, log, 'b'))).toBe(false);
    // A smaller one that would fit still waits behind b (no overtaking).
    expect(b.reserve(10, waiter(10, log, 'c'))).toBe(false);
    expect(b.waiting).toBe(2);
    expect([b.ledger.held, server.total.held]).toEqual([60, 60]);
    b.release(60);
    expect(log).toEqual(['b:50', 'c:10']);
    expect([b.ledger.held, server.total.held, b.waiting]).toEqual([60, 60, 0]);
  });

  it('lets one command larger than the budget through when nothing else is held', () => {
    const { s } = budgets(100, 1000);
    const log: string[] = [];
    const [b] = s;
    expect(b.reserve(500, waiter(500, log, 'big'))).toBe(true);
    expect(b.reserve(1, waiter(1, log, 'small'))).toBe(false);
    b.release(500);
    expect(log).toEqual(['small:1']);
  });

  it('the total budget holds across sessions; a release in one session wakes another', () => {
    const { server, s } = budgets(100, 150, 2);
    const log: string[] = [];
    expect(s[0].reserve(100, waiter(100, log, 'a'))).toBe(true);
    expect(s[1].reserve(80, waiter(80, log, 'b'))).toBe(false);
    expect(server.over).toBe(false);
    s[0].release(100);
    expect(log).toEqual(['b:80']);
    expect(server.total.held).toBe(80);
  });

  it('charge() counts early data past the budget; over is true until released; paused readers are told', () => {
    const { server, s } = budgets(100, 1000);
    const [b] = s;
    b.charge(150);
    expect(b.over).toBe(true);
    let resumed = 0;
    server.onRelease(() => resumed++);
    b.release(100, 100);
    expect(b.over).toBe(false);
    expect(resumed).toBe(1);
    b.release(50, 50);
    expect(resumed).toBe(1); // once per registration
    expect([b.ledger.held, b.earlyBytes, server.total.held]).toEqual([0, 0, 0]);
  });

  it('only early data stops reading: reserved bytes (an oversized command) and settled early data do not', () => {
    const { server, s } = budgets(100, 150, 2);
    expect(s[0].reserve(500, waiter(500, [], 'big'))).toBe(true);
    expect(s[0].over).toBe(false);
    s[1].charge(120);
    expect(s[1].over).toBe(true);
    // Another session's early data does not stop this one, though the total is over.
    expect(server.over).toBe(true);
    expect(s[0].over).toBe(false);
    s[1].settle(120);
    expect(s[1].over).toBe(false);
    expect(s[1].ledger.held).toBe(120);
  });

  it('a waiter that ended meanwhile is dropped from the queue', () => {
    const { s } = budgets(100, 1000);
    const log: string[] = [];
    const [b] = s;
    b.reserve(100, waiter(100, log, 'a'));
    const gone = waiter(50, log, 'gone');
    b.reserve(50, gone);
    b.reserve(40, waiter(40, log, 'next'));
    gone.done = true;
    b.release(100);
    expect(log).toEqual(['next:40']);
  });
});

describe('ScsiTask under a write budget', () => {
  it('a write over budget gets no buffer and no R2T until the one before it has reached the backstore', async () => {
    const { s } = budgets(64 * KiB, 1024 * KiB);
    const t = setup({ maxBurstLength: 64 * KiB, immediateData: false, initialR2T: true }, undefined, undefined, { writeBudget: s[0] });
    const first = new ScsiTask(t.host, cmd({ itt: 1, expectedDataTransferLength: 64 * KiB }));
    first.start(cmd({ itt: 1, expectedDataTransferLength: 64 * KiB }));
    first.delivered = true;
    first.prepare();
    const second = new ScsiTask(t.host, cmd({ itt: 2, expectedDataTransferLength: 32 * KiB }));
    second.start(cmd({ itt: 2, expectedDataTransferLength: 32 * KiB }));
    second.delivered = true;
    second.prepare();
    expect(r2ts(t.sent).map((r) => r.itt)).toEqual([1]);
    expect(second.waitingForBudget).toBe(true);
    expect(s[0].ledger.held).toBe(64 * KiB);

    const [r] = r2ts(t.sent);
    expect(first.dataOutPdu(dataOut(r.targetTransferTag, 0, 0, Buffer.alloc(64 * KiB, 7), true))).toBeUndefined();
    first.maybeSubmit();
    await new Promise((res) => setImmediate(res));
    expect(t.submitted).toHaveLength(1);
    // The first write's data reached the core: its bytes are back and the second goes on.
    expect(r2ts(t.sent).map((x) => [x.itt, x.desiredDataTransferLength])).toEqual([
      [1, 64 * KiB],
      [2, 32 * KiB],
    ]);
    expect(second.waitingForBudget).toBe(false);
    expect(s[0].ledger.held).toBe(32 * KiB);
  });

  it('immediate data of a command not yet delivered is copied and counted; prepare keeps only the landing buffer', () => {
    const { s } = budgets(1024 * KiB, 1024 * KiB);
    const t = setup({ immediateData: true, firstBurstLength: 8 * KiB, initialR2T: true }, undefined, undefined, { writeBudget: s[0] });
    const imm = Buffer.alloc(8 * KiB, 3);
    const pdu = cmd({ expectedDataTransferLength: 16 * KiB, data: imm });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.keepEarlyData(); // waiting behind a CmdSN gap
    imm.fill(0); // the framer's memory is reused
    expect(task.chargedBytes).toBe(8 * KiB);
    expect(s[0].ledger.held).toBe(8 * KiB);
    task.delivered = true;
    task.prepare();
    expect(task.chargedBytes).toBe(16 * KiB);
    expect(s[0].ledger.held).toBe(16 * KiB);
    expect(r2ts(t.sent).map((r) => [r.bufferOffset, r.desiredDataTransferLength])).toEqual([[8 * KiB, 8 * KiB]]);
    task.abortLocal();
    expect(s[0].ledger.held).toBe(0);
  });

  it('a refused write gives back what its early data held', () => {
    const { s } = budgets(1024 * KiB, 1024 * KiB);
    const t = setup({ immediateData: true, firstBurstLength: 8 * KiB }, undefined, () => ({ kind: 'respond', response: { status: 2, residualKind: 'none', residualCount: 0 } }), {
      writeBudget: s[0],
    });
    const pdu = cmd({ expectedDataTransferLength: 8 * KiB, data: Buffer.alloc(8 * KiB) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.keepEarlyData();
    expect(s[0].ledger.held).toBe(8 * KiB);
    task.delivered = true;
    task.prepare();
    expect(s[0].ledger.held).toBe(0);
    expect(t.sent.filter((p) => p.opcode === Opcode.SCSI_RESPONSE)).toHaveLength(1);
  });

  it('unsolicited data of a command waiting for budget is kept and counted, and lands once granted', async () => {
    const { s } = budgets(16 * KiB, 1024 * KiB);
    const t = setup({ immediateData: true, firstBurstLength: 8 * KiB, initialR2T: false, maxBurstLength: 16 * KiB }, undefined, undefined, { writeBudget: s[0] });
    const blocker = { done: false, chargedBytes: 0, wantedBytes: () => -1, granted: () => {} };
    expect(s[0].reserve(16 * KiB, blocker)).toBe(true); // another command holds the whole budget
    const data = Buffer.alloc(16 * KiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const pdu = cmd({ expectedDataTransferLength: 16 * KiB, final: false, data: data.subarray(0, 4 * KiB) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    task.keepEarlyData();
    expect(task.waitingForBudget).toBe(true);
    expect(task.dataOutPdu(dataOut(RESERVED, 0, 4 * KiB, data.subarray(4 * KiB, 8 * KiB), true))).toBeUndefined();
    expect(s[0].ledger.held).toBe(16 * KiB + 8 * KiB);
    expect(r2ts(t.sent)).toHaveLength(0);
    s[0].release(16 * KiB);
    const [r] = r2ts(t.sent);
    expect([r.bufferOffset, r.desiredDataTransferLength]).toEqual([8 * KiB, 8 * KiB]);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 8 * KiB, data.subarray(8 * KiB), true))).toBeUndefined();
    task.maybeSubmit();
    await new Promise((res) => setImmediate(res));
    expect(t.submitted[0].dataOut!.equals(data)).toBe(true);
    expect(s[0].ledger.held).toBe(0);
  });
});

describe('reply flushing and the CmdSN slot', () => {
  it('while backlogged, a task keeps its slot until the write callback of its reply', async () => {
    let backlogged = true;
    const t = setup({}, undefined, undefined, { deferWrites: true, backlogged: () => backlogged });
    const pdu = cmd({ write: false, expectedDataTransferLength: 0 });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.maybeSubmit();
    await new Promise((res) => setImmediate(res));
    expect(t.finished).toEqual([task]);
    expect(task.slotHeldForFlush).toBe(true);
    expect(t.flushed).toHaveLength(0);
    for (const w of t.pendingWrites.splice(0)) w();
    expect(t.flushed).toEqual([task]);

    backlogged = false;
    const pdu2 = cmd({ itt: 8, write: false, expectedDataTransferLength: 0 });
    const quick = new ScsiTask(t.host, pdu2);
    quick.start(pdu2);
    quick.delivered = true;
    quick.maybeSubmit();
    await new Promise((res) => setImmediate(res));
    expect(quick.slotHeldForFlush).toBe(false);
  });
});

describe('StatusRetention byte count (ERL >= 1)', () => {
  it('counts kept PDUs and task data, releases them on ExpStatSN, and reports going over the limit', () => {
    const over: number[] = [];
    const r = new StatusRetention(
      () => {},
      () => 1000,
      (b) => over.push(b),
    );
    r.sent({ opcode: Opcode.NOP_IN, itt: 1, statSN: 5, data: Buffer.alloc(400) } as never);
    expect(r.retainedBytes).toBe(448);
    r.taskData(500);
    expect(over).toEqual([]);
    r.sent({ opcode: Opcode.SCSI_RESPONSE, itt: 2, statSN: 6 } as never);
    expect(r.retainedBytes).toBe(996);
    r.sent({ opcode: Opcode.SCSI_RESPONSE, itt: 3, statSN: 7 } as never);
    expect(over).toEqual([1044]);
    r.ack(7);
    expect(r.retainedBytes).toBe(548);
    r.taskData(-500);
    r.ack(8);
    expect(r.retainedBytes).toBe(0);
  });
});
