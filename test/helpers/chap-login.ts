// One CHAP attempt by hand (RFC 7143 §12.1.3) against a target, for the
// brute-force throttling tests: how long the CHAP response took to be
// answered, and with what Login status.

import { performance } from 'node:perf_hooks';
import { chapResponse, formatChapHex, parseChapValue } from '../../src/protocols/iscsi/chap.js';
import { encodeTextKeys } from '../../src/protocols/iscsi/text.js';
import { Opcode, type LoginRequestPdu } from '../../src/protocols/iscsi/pdu-types.js';
import { RawInitiator } from './raw-iscsi.js';

export interface ChapAttempt {
  /** Status-Class << 8 | Status-Detail of the answer to the CHAP response (0: authenticated), or what happened instead. */
  status: number | 'closed' | 'timeout';
  /** Milliseconds from sending CHAP_N/CHAP_R to its answer. */
  answerMs: number;
  /** performance.now() when CHAP_N/CHAP_R went out, and when the answer came (or the wait ended). */
  sentAt: number;
  answeredAt: number;
}

export async function chapAttempt(
  port: number,
  o: { initiator: string; target: string; userid: string; secret: string; localAddress?: string; host?: string; timeoutMs?: number },
): Promise<ChapAttempt> {
  const c = await RawInitiator.connect(port, o.host ?? '127.0.0.1', o.localAddress);
  try {
    const first = await c.loginStep(
      [
        ['InitiatorName', o.initiator],
        ['TargetName', o.target],
        ['SessionType', 'Normal'],
        ['AuthMethod', 'CHAP'],
      ],
      { csg: 0, nsg: 1, transit: false },
    );
    if (first === 'closed' || first === 'timeout') return { status: first, answerMs: 0, sentAt: 0, answeredAt: 0 };
    if (first.statusClass !== 0) return { status: (first.statusClass << 8) | first.statusDetail, answerMs: 0, sentAt: 0, answeredAt: 0 };
    const chal = await c.loginStep([['CHAP_A', '5']], { csg: 0, nsg: 1, transit: false });
    if (chal === 'closed' || chal === 'timeout') return { status: chal, answerMs: 0, sentAt: 0, answeredAt: 0 };
    const keys = RawInitiator.keys(chal);
    const id = Number(keys.get('CHAP_I'));
    const challenge = parseChapValue(keys.get('CHAP_C') ?? '');
    const t0 = performance.now();
    c.send<LoginRequestPdu>({
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      transit: true,
      continue: false,
      csg: 0,
      nsg: 1,
      versionMax: 0,
      versionMin: 0,
      isid: 0x23d000000001,
      tsih: 0,
      cid: 0,
      itt: 0x1000,
      cmdSN: c.cmdSN,
      expStatSN: c.expStatSN,
      data: encodeTextKeys([
        ['CHAP_N', o.userid],
        ['CHAP_R', formatChapHex(chapResponse(id, o.secret, challenge))],
      ]),
    });
    const r = await c.next(o.timeoutMs ?? 10_000);
    const answeredAt = performance.now();
    const at = { answerMs: answeredAt - t0, sentAt: t0, answeredAt };
    if (r === 'closed' || r === 'timeout') return { status: r, ...at };
    if (r.opcode !== Opcode.LOGIN_RESPONSE) throw new Error(`expected a Login Response, got opcode ${r.opcode}`);
    return { status: (r.statusClass << 8) | r.statusDetail, ...at };
  } finally {
    c.close();
  }
}
