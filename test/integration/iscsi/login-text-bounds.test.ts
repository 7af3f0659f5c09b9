// Login and Text key text is bounded both ways (RFC 7143 §6.1, §11.12-13,
// §13.12): a long reply goes out in pieces no larger than the initiator
// accepts, with C=1 and T=0 on all but the last; a login that sends too many
// keys, too much text or too many requests fails with Initiator Error; a
// Text Request with too many keys gets a Reject (Negotiation Reset). And
// DefaultTime2Wait/Retain are answered no higher than the server's caps.

import { afterEach, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { RawInitiator, nextPdu } from '../../helpers/raw-iscsi.js';
import { Opcode, type LoginRequestPdu, type LoginResponsePdu, type RejectPdu, type TextRequestPdu, type TextResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';
import { RejectReason, RESERVED_TAG } from '../../../src/protocols/iscsi/constants.js';
import { encodeTextKeys, parseTextKeys } from '../../../src/protocols/iscsi/text.js';
import { LOGIN_MAX_KEYS, LOGIN_MAX_PDUS, LOGIN_MAX_TEXT_BYTES } from '../../../src/fabrics/iscsi/login.js';
import { TEXT_MAX_KEYS } from '../../../src/fabrics/iscsi/text.js';

const INITIATOR = 'iqn.2024-01.org.lunkit.test:init';
let target: TestTarget | undefined;
const open: RawInitiator[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await target?.close();
  target = undefined;
});

async function connect(): Promise<RawInitiator> {
  target ??= await startIscsiTarget();
  const c = await RawInitiator.connect(target.port);
  open.push(c);
  return c;
}

function loginPdu(c: RawInitiator, data: Buffer, o: { transit?: boolean; cont?: boolean; csg?: number; nsg?: number } = {}): void {
  c.send<LoginRequestPdu>({
    opcode: Opcode.LOGIN_REQUEST,
    immediate: true,
    transit: o.transit ?? false,
    continue: o.cont ?? false,
    csg: o.csg ?? 1,
    nsg: o.nsg ?? (o.transit ? 3 : 1),
    versionMax: 0,
    versionMin: 0,
    isid: 0x23d000000001,
    tsih: 0,
    cid: 0,
    itt: 0x1000,
    cmdSN: 1,
    expStatSN: c.expStatSN,
    data,
  });
}

async function loginResponse(c: RawInitiator): Promise<LoginResponsePdu> {
  const p = await nextPdu(c);
  expect(p.opcode).toBe(Opcode.LOGIN_RESPONSE);
  return p as LoginResponsePdu;
}

/** Send `text` in pieces of at most `piece` bytes with C=1 on all but the last; returns the acks of the C=1 pieces. */
async function sendSplit(c: RawInitiator, text: Buffer, piece: number, o: { transit?: boolean } = {}): Promise<LoginResponsePdu[]> {
  const acks: LoginResponsePdu[] = [];
  for (let off = 0; off < text.length; off += piece) {
    const last = off + piece >= text.length;
    loginPdu(c, text.subarray(off, off + piece), { cont: !last, transit: last ? o.transit : false });
    if (!last) acks.push(await loginResponse(c));
  }
  return acks;
}

const longKey = (i: number): string => `Xlunkit-test-unknown-key-${String(i).padStart(5, '0')}-${'k'.repeat(30)}`;

describe('login text bounds', () => {
  it('a reply longer than 8192 bytes comes in pieces with C=1, T=0; the login then completes', { timeout: 15_000 }, async () => {
    const c = await connect();
    const n = 200;
    const keys: Array<[string, string]> = [['InitiatorName', INITIATOR], ['TargetName', target!.iqn], ['SessionType', 'Normal']];
    for (let i = 0; i < n; i++) keys.push([longKey(i), 'v']);
    const text = encodeTextKeys(keys);
    expect(text.length).toBeGreaterThan(8192);
    const acks = await sendSplit(c, text, 8192, { transit: true });
    // §11.12.2: each C=1 request piece is acknowledged with an empty response.
    for (const a of acks) expect(a.data.length).toBe(0);

    const pieces: LoginResponsePdu[] = [];
    for (;;) {
      const r = await loginResponse(c);
      expect(r.statusClass).toBe(0);
      expect(r.data.length).toBeLessThanOrEqual(8192);
      pieces.push(r);
      if (!r.continue) break;
      expect(r.transit).toBe(false);
      // Ask for the rest with an empty request, asking again to move on.
      loginPdu(c, Buffer.alloc(0), { transit: false });
    }
    expect(pieces.length).toBeGreaterThan(1);
    const replies = parseTextKeys(Buffer.concat(pieces.map((p) => p.data)));
    expect(replies.filter(([, v]) => v === 'NotUnderstood').length).toBe(n);
    // The last empty request had T=0: the target did not move on by itself.
    expect(pieces[pieces.length - 1].transit).toBe(false);
    loginPdu(c, Buffer.alloc(0), { transit: true });
    const fin = await loginResponse(c);
    expect(fin.statusClass).toBe(0);
    expect(fin.transit).toBe(true);
    expect(fin.nsg).toBe(3);
    expect(fin.tsih).not.toBe(0);
  });

  it('pieces honour a smaller MaxRecvDataSegmentLength the initiator declared', { timeout: 15_000 }, async () => {
    const c = await connect();
    const keys: Array<[string, string]> = [['InitiatorName', INITIATOR], ['TargetName', target!.iqn], ['MaxRecvDataSegmentLength', '512']];
    for (let i = 0; i < 40; i++) keys.push([longKey(i), 'v']);
    loginPdu(c, encodeTextKeys(keys));
    let total = 0;
    for (;;) {
      const r = await loginResponse(c);
      expect(r.data.length).toBeLessThanOrEqual(512);
      total += r.data.length;
      if (!r.continue) break;
      loginPdu(c, Buffer.alloc(0));
    }
    expect(total).toBeGreaterThan(512);
  });

  it(`more than ${LOGIN_MAX_KEYS} keys fail the login with Initiator Error`, { timeout: 15_000 }, async () => {
    const c = await connect();
    const keys: Array<[string, string]> = [['InitiatorName', INITIATOR], ['TargetName', target!.iqn]];
    for (let i = 0; i < LOGIN_MAX_KEYS + 10; i++) keys.push([`X${i}`, 'v']);
    await sendSplit(c, encodeTextKeys(keys), 8192);
    const r = await loginResponse(c);
    expect([r.statusClass, r.statusDetail]).toEqual([2, 0]);
    expect(await c.next(3000)).toBe('closed');
  });

  it(`more than ${LOGIN_MAX_TEXT_BYTES} bytes of C=1 text fail the login without waiting for the end`, { timeout: 15_000 }, async () => {
    const c = await connect();
    const piece = Buffer.alloc(8000, 0x41);
    let failed: LoginResponsePdu | undefined;
    for (let i = 0; i < 20 && !failed; i++) {
      loginPdu(c, piece, { cont: true });
      const r = await loginResponse(c);
      if (r.statusClass !== 0) failed = r;
    }
    expect(failed).toBeDefined();
    expect([failed!.statusClass, failed!.statusDetail]).toEqual([2, 0]);
    expect(await c.next(3000)).toBe('closed');
  });

  it(`more than ${LOGIN_MAX_PDUS} Login Requests fail the login`, { timeout: 15_000 }, async () => {
    const c = await connect();
    loginPdu(c, encodeTextKeys([['InitiatorName', INITIATOR], ['TargetName', target!.iqn]]));
    let r = await loginResponse(c);
    let i = 1;
    while (r.statusClass === 0 && i < LOGIN_MAX_PDUS + 5) {
      loginPdu(c, Buffer.alloc(0));
      r = await loginResponse(c);
      i++;
    }
    expect(i).toBe(LOGIN_MAX_PDUS + 1);
    expect([r.statusClass, r.statusDetail]).toEqual([2, 0]);
  });

  it('DefaultTime2Wait/Retain are answered no higher than the limits, whatever the offer or the TPG says', { timeout: 15_000 }, async () => {
    // The TPG asks for an hour of Time2Retain; the cap still wins.
    target = await startIscsiTarget({ parameters: { DefaultTime2Retain: '3600' } });
    const c = await connect();
    const r = await c.login(INITIATOR, target!.iqn, { extra: [['DefaultTime2Wait', '3600'], ['DefaultTime2Retain', '3600'], ['ErrorRecoveryLevel', '0']] });
    const keys = RawInitiator.keys(r);
    expect(keys.get('DefaultTime2Wait')).toBe(String(target!.server.limits.maxDefaultTime2Wait));
    expect(keys.get('DefaultTime2Retain')).toBe(String(target!.server.limits.maxDefaultTime2Retain));

    target!.server.setLimits({ maxDefaultTime2Wait: 5, maxDefaultTime2Retain: 7 });
    const d = await connect();
    const r2 = await d.login(INITIATOR, target!.iqn, { isid: 0x23d000000002, extra: [['DefaultTime2Wait', '3600'], ['DefaultTime2Retain', '3']] });
    const k2 = RawInitiator.keys(r2);
    expect(k2.get('DefaultTime2Wait')).toBe('5');
    // Below the cap the ordinary result function holds (min of offer and ours).
    expect(k2.get('DefaultTime2Retain')).toBe('3');
  });
});

describe('text request bounds', () => {
  it(`a Text Request with more than ${TEXT_MAX_KEYS} keys is rejected (Negotiation Reset); SendTargets still works after`, { timeout: 15_000 }, async () => {
    const c = await connect();
    await c.login(INITIATOR, undefined);
    const text = (keys: Array<[string, string]>, itt: number): void =>
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
        data: encodeTextKeys(keys),
      });
    const many: Array<[string, string]> = [];
    for (let i = 0; i < TEXT_MAX_KEYS + 1; i++) many.push([`X${i}`, 'v']);
    text(many, 1);
    const p = await nextPdu(c);
    expect(p.opcode).toBe(Opcode.REJECT);
    expect((p as RejectPdu).reason).toBe(RejectReason.NEGOTIATION_RESET);
    text([['SendTargets', 'All']], 2);
    const q = await nextPdu(c);
    expect(q.opcode).toBe(Opcode.TEXT_RESPONSE);
    expect(parseTextKeys((q as TextResponsePdu).data)[0]).toEqual(['TargetName', target!.iqn]);
  });
});
