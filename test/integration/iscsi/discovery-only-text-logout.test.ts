// A discovery session accepts only Text (SendTargets) and Logout (RFC 7143
// §4.3: "All other requests MUST be rejected"): NOP-Out, SCSI commands and
// TMFs get a Reject (reason 0x04 Protocol Error) and the session goes on; an
// idle discovery session is dropped after limits.discoveryIdleTimeout.

import { afterEach, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { RawInitiator, nextPdu, scsiCmd } from '../../helpers/raw-iscsi.js';
import { Opcode, type NopOutPdu, type RejectPdu, type TaskMgmtRequestPdu, type TextRequestPdu, type TextResponsePdu, type LogoutRequestPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { RejectReason, RESERVED_TAG } from '../../../src/protocols/iscsi/constants.js';
import { encodeTextKeys, parseTextKeys } from '../../../src/protocols/iscsi/text.js';

let target: TestTarget | undefined;
const open: RawInitiator[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.close();
  target = undefined;
});

async function discovery(): Promise<RawInitiator> {
  target = await startIscsiTarget();
  const c = await RawInitiator.connect(target.port);
  open.push(c);
  await c.login('iqn.2024-01.org.lunkit.test:init', undefined);
  return c;
}

function sendTargets(c: RawInitiator, itt: number): void {
  c.send<TextRequestPdu>({
    opcode: Opcode.TEXT_REQUEST,
    immediate: false,
    final: true,
    continue: false,
    lun: 0,
    itt,
    targetTransferTag: RESERVED_TAG,
    cmdSN: c.cmdSN++,
    expStatSN: c.expStatSN,
    data: encodeTextKeys([['SendTargets', 'All']]),
  });
}

describe('discovery session: only Text and Logout', () => {
  it('rejects NOP-Out, SCSI Command and TMF with Protocol Error, then still answers SendTargets and Logout', { timeout: 15_000 }, async () => {
    const c = await discovery();
    c.send<NopOutPdu>({
      opcode: Opcode.NOP_OUT,
      immediate: false,
      lun: 0,
      itt: 0x10,
      targetTransferTag: RESERVED_TAG,
      cmdSN: c.cmdSN++,
      expStatSN: c.expStatSN,
      data: Buffer.alloc(64, 1),
    });
    let p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.REJECT);
    expect((p as RejectPdu).reason).toBe(RejectReason.PROTOCOL_ERROR);

    scsiCmd(c, { itt: 0x11, cmdSN: c.cmdSN++, cdb: Buffer.alloc(16) });
    p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.REJECT);

    c.send<TaskMgmtRequestPdu>({
      opcode: Opcode.TASK_MGMT_REQUEST,
      immediate: false,
      function: 5,
      lun: 0,
      itt: 0x12,
      referencedTaskTag: RESERVED_TAG,
      cmdSN: c.cmdSN++,
      expStatSN: c.expStatSN,
      refCmdSN: 0,
      expDataSN: 0,
    });
    p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.REJECT);

    // The rejected requests used their CmdSNs: the window did not stall.
    sendTargets(c, 0x13);
    p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.TEXT_RESPONSE);
    const keys = parseTextKeys((p as TextResponsePdu).data);
    expect(keys[0]).toEqual(['TargetName', target!.iqn]);

    c.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: false, reasonCode: 0, itt: 0x14, cid: 0, cmdSN: c.cmdSN++, expStatSN: c.expStatSN });
    p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.LOGOUT_RESPONSE);
    expect(await c.next(3000)).toBe('closed');
  });

  it('drops a discovery session idle past discoveryIdleTimeout; NOP-Outs do not keep it open', { timeout: 15_000 }, async () => {
    const c = await discovery();
    target!.server.setLimits({ ...target!.server.limits, discoveryIdleTimeout: 1 });
    // The limit is read when the session enters full feature phase: log in again.
    const d = await RawInitiator.connect(target!.port);
    open.push(d);
    await d.login('iqn.2024-01.org.lunkit.test:init', undefined, { isid: 0x23d000000002 });
    c.close();
    const started = Date.now();
    let rejects = 0;
    let closed = false;
    while (Date.now() - started < 8000) {
      d.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0, itt: 0x20 + rejects, targetTransferTag: RESERVED_TAG, cmdSN: d.cmdSN, expStatSN: d.expStatSN });
      const p = await d.next(300);
      if (p === 'closed') {
        closed = true;
        break;
      }
      if (p !== 'timeout' && p.opcode === Opcode.REJECT) rejects++;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(rejects).toBeGreaterThan(0);
    expect(closed).toBe(true);
  });
});
