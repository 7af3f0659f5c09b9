// Connection admission of the iSCSI target (issue 17): caps in total and per
// source address enforced at accept, the per-initiator session cap at login
// (Out of resources, RFC 7143 §11.13.5), CHAP failures throttled per name and
// per address, and refusals logged once per interval.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LoginStatus } from '../../../src/protocols/iscsi/constants.js';
import { Opcode, type LoginResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { encodeTextKeys } from '../../../src/protocols/iscsi/text.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { RawInitiator } from '../../helpers/raw-iscsi.js';
import { chapAttempt } from '../../helpers/chap-login.js';

type Line = { level: string; msg: string; fields: Record<string, unknown> };

function recordingLogger(lines: Line[]) {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields: fields ?? {} });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A socket from `localAddress`; resolves with it once connected. */
function rawConnect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.on('error', () => {});
    s.once('error', reject);
  });
}

/** 'closed' if the server closes the socket within `ms`, else 'open'. */
function closedWithin(s: net.Socket, ms: number): Promise<'closed' | 'open'> {
  if (s.destroyed || s.readableEnded) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('open'), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
    s.resume();
  });
}

const OUT_OF_RESOURCES = (LoginStatus.OUT_OF_RESOURCES.statusClass << 8) | LoginStatus.OUT_OF_RESOURCES.statusDetail;
const AUTH_FAILURE = (LoginStatus.AUTHENTICATION_FAILURE.statusClass << 8) | LoginStatus.AUTHENTICATION_FAILURE.statusDetail;

describe('iSCSI admission', () => {
  let t: TestTarget | undefined;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await t?.close();
    t = undefined;
  });

  it('closes connections over the per-address and total caps at once, logs once, counts by reason', { timeout: 20_000 }, async () => {
    const lines: Line[] = [];
    t = await startIscsiTarget({ logger: recordingLogger(lines) });
    t.server.setLimits({ maxConnections: 4, maxConnectionsPerAddress: 2 });
    for (const a of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']) sockets.push(await rawConnect(t.port, a));
    const overAddress = await rawConnect(t.port, '127.0.0.1');
    const overTotal = await rawConnect(t.port, '127.0.0.3');
    sockets.push(overAddress, overTotal);
    expect(await closedWithin(overAddress, 5000)).toBe('closed');
    expect(await closedWithin(overTotal, 5000)).toBe('closed');
    // The admitted ones are still open (they are in login, with a 15 s login timeout).
    expect(await closedWithin(sockets[0], 200)).toBe('open');
    expect(t.server.statsSnapshot().connectionsRefused).toEqual({ total: 1, 'per-address': 1, 'per-initiator': 0 });
    // Thirty more refused attempts make no more log lines until the interval ends.
    for (let i = 0; i < 30; i++) {
      const s = await rawConnect(t.port, '127.0.0.4');
      sockets.push(s);
      expect(await closedWithin(s, 5000)).toBe('closed');
    }
    const refusedLines = () => lines.filter((l) => l.msg.startsWith('iSCSI connection refused'));
    expect(refusedLines()).toHaveLength(1);
    expect(refusedLines()[0].fields).toMatchObject({ reason: 'per-address', remote: '127.0.0.1', limit: 2 });
    // A slot freed is a slot taken.
    sockets[0].destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await rawConnect(t.port, '127.0.0.1');
    sockets.push(again);
    expect(await closedWithin(again, 300)).toBe('open');
    await t.close();
    t = undefined;
    // Closing writes the summary of what was held back.
    expect(refusedLines()).toHaveLength(2);
    expect(refusedLines()[1].fields).toMatchObject({ more: 31, total: 31 });
  });

  it('refuses a session over maxSessionsPerInitiator with Out of resources; reinstating an ISID is not a new session', { timeout: 20_000 }, async () => {
    t = await startIscsiTarget();
    t.server.setLimits({ maxSessionsPerInitiator: 2 });
    const I = 'iqn.2024-01.org.lunkit.test:many';
    const open: RawInitiator[] = [];
    try {
      for (const isid of [0x400000000001, 0x400000000002]) {
        const c = await RawInitiator.connect(t.port);
        open.push(c);
        await c.login(I, t.iqn, { isid });
      }
      const third = await RawInitiator.connect(t.port);
      open.push(third);
      const r = await third.loginStep([['InitiatorName', I], ['TargetName', t.iqn], ['SessionType', 'Normal']], { isid: 0x400000000003 });
      expect(r === 'closed' || r === 'timeout' ? r : (r.statusClass << 8) | r.statusDetail).toBe(OUT_OF_RESOURCES);
      // Another initiator name is not affected.
      const other = await RawInitiator.connect(t.port);
      open.push(other);
      await other.login('iqn.2024-01.org.lunkit.test:other', t.iqn, { isid: 0x400000000003 });
      // Same ISID as a live session: reinstatement (RFC 7143 §6.3.5), allowed at the cap.
      const re = await RawInitiator.connect(t.port);
      open.push(re);
      await re.login(I, t.iqn, { isid: 0x400000000001 });
      expect(t.server.statsSnapshot().connectionsRefused['per-initiator']).toBe(1);
    } finally {
      for (const c of open) c.close();
    }
  });

  it('a Login Request sent while a delayed CHAP response waits ends the login with Initiator Error (login is lock-step)', { timeout: 30_000 }, async () => {
    const VICTIM = 'iqn.2024-01.org.lunkit.test:impatient';
    const SECRET = 'sixteen-byte-pw!';
    t = await startIscsiTarget({
      attributes: { authentication: true },
      acls: [{ initiator: VICTIM, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }], chap: { userid: 'v', password: SECRET } }],
    });
    t.server.setLimits({ authFailureDelayMs: 2000, authFailureMaxDelayMs: 2000 });
    const first = await chapAttempt(t.port, { initiator: VICTIM, target: t.iqn, userid: 'v', secret: 'wrong-secret-xx!' });
    expect(first.status).toBe(AUTH_FAILURE);
    // Now the name's next response waits 2 s; send the response, then another request at once.
    const c = await RawInitiator.connect(t.port, '127.0.0.1', '127.0.0.5');
    try {
      const keys = (r: Awaited<ReturnType<RawInitiator['loginStep']>>) => (r === 'closed' || r === 'timeout' ? new Map<string, string>() : RawInitiator.keys(r));
      await c.loginStep([['InitiatorName', VICTIM], ['TargetName', t.iqn], ['SessionType', 'Normal'], ['AuthMethod', 'CHAP']], { csg: 0, nsg: 1, transit: false });
      const chal = keys(await c.loginStep([['CHAP_A', '5']], { csg: 0, nsg: 1, transit: false }));
      expect(chal.get('CHAP_C')).toBeDefined();
      const req = (data: Array<[string, string]>) =>
        c.send({ opcode: Opcode.LOGIN_REQUEST, immediate: true, transit: true, continue: false, csg: 0, nsg: 1, versionMax: 0, versionMin: 0, isid: 0x23d000000001, tsih: 0, cid: 0, itt: 0x1000, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: encodeTextKeys(data) });
      req([['CHAP_N', 'v'], ['CHAP_R', '0x' + '00'.repeat(16)]]);
      req([['CHAP_N', 'v'], ['CHAP_R', '0x' + '11'.repeat(16)]]);
      const r = await c.next(5000);
      expect(r === 'closed' || r === 'timeout' ? r : (r as LoginResponsePdu).statusClass << 8 | (r as LoginResponsePdu).statusDetail).toBe(0x0200);
      expect(await c.next(5000)).toBe('closed');
    } finally {
      c.close();
    }
  });

  it('delays CHAP answers after failures (per name, per address); another name from another address is not delayed', { timeout: 60_000 }, async () => {
    const lines: Line[] = [];
    const VICTIM = 'iqn.2024-01.org.lunkit.test:victim';
    const GOOD = 'iqn.2024-01.org.lunkit.test:good';
    const SECRET = 'sixteen-byte-pw!';
    t = await startIscsiTarget({
      attributes: { authentication: true },
      logger: recordingLogger(lines),
      acls: [
        { initiator: VICTIM, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }], chap: { userid: 'victim', password: SECRET } },
        { initiator: GOOD, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }], chap: { userid: 'good', password: SECRET } },
      ],
    });
    t.server.setLimits({ authFailureDelayMs: 40, authFailureMaxDelayMs: 320 });
    const attempts = [];
    for (let i = 0; i < 8; i++) {
      const a = await chapAttempt(t.port, { initiator: VICTIM, target: t.iqn, userid: 'victim', secret: `wrong-secret-${i}!` });
      expect(a.status).toBe(AUTH_FAILURE);
      attempts.push(a);
    }
    // Lower bounds only (a timer never fires early). Failure k is checked no
    // sooner than failure k-1 plus the backoff after k-1 failures (40 ms
    // doubling to 320), and failure 1 no sooner than its response was sent; so
    // answer k comes at least the sum of those backoffs after the first send.
    const backoff = (n: number) => Math.min(320, 40 * 2 ** (n - 1));
    const start = attempts[0].sentAt;
    let floor = 0;
    attempts.forEach((a, k) => {
      if (k > 0) floor += backoff(k);
      expect(a.answeredAt - start).toBeGreaterThanOrEqual(floor - 1);
    });
    // Another name from a clean address: no delay at all (no "delayed" line for it).
    const good = await chapAttempt(t.port, { initiator: GOOD, target: t.iqn, userid: 'good', secret: SECRET, localAddress: '127.0.0.2' });
    expect(good.status).toBe(0);
    const delayed = (who: string) => lines.filter((l) => l.msg === 'iSCSI CHAP response delayed after failures' && l.fields.initiator === who);
    expect(delayed(GOOD)).toHaveLength(0);
    // (An attempt slower than the backoff is not delayed: how many were depends on the machine.)
    expect(delayed(VICTIM).length).toBeGreaterThan(0);
    // The right secret for the victim is still accepted (after its delay), and resets its backoff.
    const right = await chapAttempt(t.port, { initiator: VICTIM, target: t.iqn, userid: 'victim', secret: SECRET, localAddress: '127.0.0.3' });
    expect(right.status).toBe(0);
    expect(right.answeredAt - start).toBeGreaterThanOrEqual(floor + backoff(8) - 1);
    const before = delayed(VICTIM).length;
    const after = await chapAttempt(t.port, { initiator: VICTIM, target: t.iqn, userid: 'victim', secret: SECRET, localAddress: '127.0.0.3' });
    expect(after.status).toBe(0);
    // Success forgot the name's failures, and 127.0.0.3 never failed: no delay.
    expect(delayed(VICTIM)).toHaveLength(before);
    // Eight failures made one "login failed" line and a held-back count, not eight lines.
    expect(lines.filter((l) => l.msg === 'iSCSI login failed')).toHaveLength(1);
  });
});
