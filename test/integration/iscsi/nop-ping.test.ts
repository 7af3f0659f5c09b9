// Target-initiated NOP-In pings (RFC 7143 §11.19): a live initiator answers
// and stays; a silent one is dropped after nopInTimeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawInitiator } from '../../helpers/raw-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { Opcode, type NopInPdu, type NopOutPdu } from '../../../src/protocols/iscsi/pdu-types.js';

const FF = 0xffffffff;

describe('iSCSI NOP-In pings', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [1024 * 1024], attributes: { nopInInterval: 0.2, nopInTimeout: 0.4 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('pings with ITT 0xffffffff and a TTT, without taking a StatSN', async () => {
    const c = await RawInitiator.connect(t.port);
    const login = await c.login('iqn.2024-01.org.lunkit.test:pinged', t.iqn);
    const p = (await c.next(1500)) as NopInPdu;
    expect(p.opcode).toBe(Opcode.NOP_IN);
    expect(p.itt).toBe(FF);
    expect(p.targetTransferTag).not.toBe(FF);
    expect(p.statSN).toBe((login.statSN + 1) >>> 0);
    // Answer it, as an initiator must (immediate, ITT 0xffffffff, echo TTT).
    c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: true, itt: FF, targetTransferTag: p.targetTransferTag, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
    // Still alive well past the timeout while answering every ping.
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      const n = await c.next(until - Date.now());
      if (n === 'timeout') break;
      expect(n).not.toBe('closed');
      if (n !== 'closed') {
        const ping = n as NopInPdu;
        c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: true, itt: FF, targetTransferTag: ping.targetTransferTag, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
      }
    }
    expect(c.closed).toBe(false);
    c.close();
  });

  it('drops a connection that never answers', async () => {
    const c = await RawInitiator.connect(t.port);
    await c.login('iqn.2024-01.org.lunkit.test:silent', t.iqn);
    const p = await c.next(1500);
    expect((p as NopInPdu).opcode).toBe(Opcode.NOP_IN);
    expect(await c.next(2000)).toBe('closed');
  });
});
