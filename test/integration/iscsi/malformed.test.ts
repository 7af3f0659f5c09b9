// Malformed input never crashes the target: a bad opcode gets a Reject, a
// data digest error gets a Reject and the session goes on, a data segment
// longer than negotiated, a bad header digest and garbage before login drop
// the connection, a CmdSN outside the window is ignored. After each, other
// sessions (libiscsi's iscsi-inq) carry on.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { parseConfig } from '../../../src/daemon/config.js';
import { NaiveIscsiClient } from '../../helpers/naive-iscsi.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.lunkit:edge';
const INITIATOR = 'iqn.2026-11.io.lunkit:rawclient';
let rt: LunkitRuntime;
let port: number;
const clients: NaiveIscsiClient[] = [];

async function client(): Promise<NaiveIscsiClient> {
  const c = await NaiveIscsiClient.connect(port);
  clients.push(c);
  return c;
}

async function othersStillServed(): Promise<void> {
  const inq = await run('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/0`], { timeout: 15_000 });
  expect(inq.stdout).toMatch(/LUNKIT/);
}

/** Next SCSI Response on a raw session (skipping NOP-Ins), or undefined. */
async function nextResponse(c: NaiveIscsiClient): Promise<{ status: number; itt: number; senseKey?: number; asc?: number; ascq?: number } | undefined> {
  for (;;) {
    const p = await c.next(3000);
    if (!p) return undefined;
    if (p.opcode !== 0x21) continue;
    const sense = p.data.length > 2 ? p.data.subarray(2) : undefined;
    return { status: p.bhs[3], itt: p.bhs.readUInt32BE(16), senseKey: sense ? sense[2] & 0x0f : undefined, asc: sense?.[12], ascq: sense?.[13] };
  }
}

/**
 * TEST UNIT READY on a logged-in raw session; resolves to the SCSI status.
 * The first command of a new nexus reports POWER ON/RESET (a unit
 * attention), so a CHECK CONDITION with sense key 6 is retried once.
 */
async function tur(c: NaiveIscsiClient): Promise<number | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    c.send(c.scsiCommand([0x00, 0, 0, 0, 0, 0]));
    const r = await nextResponse(c);
    if (!r) return undefined;
    if (!(r.status === 2 && r.senseKey === 6)) return r.status;
  }
  return 2;
}

beforeAll(async () => {
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { ram: { type: 'ramdisk', size: '16M' } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'ram' }, attributes: { generateNodeAcls: true } } } } } },
    }),
  );
  port = rt.addresses()[0].port;
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await rt?.stop(1000);
});

describe('malformed iSCSI input', () => {
  it('garbage before login drops the connection', async () => {
    const c = await client();
    c.sendBytes(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, 'x')));
    expect(await c.waitClosed()).toBe(true);
    await othersStillServed();
  });

  it('a SCSI command before login drops the connection', async () => {
    const c = await client();
    c.send(c.scsiCommand([0x00, 0, 0, 0, 0, 0]));
    const p = await c.next();
    // Either a Login Response with an initiator error or a plain close.
    if (p) expect(p.opcode === 0x23 ? p.bhs[36] : 2).toBe(2);
    expect(await c.waitClosed()).toBe(true);
    await othersStillServed();
  });

  it('an unknown opcode gets a Reject and the session goes on', async () => {
    const c = await client();
    await c.login(INITIATOR, IQN);
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c; // not an initiator opcode
    bhs[1] = 0x80;
    bhs.writeUInt32BE(0x777, 16);
    bhs.writeUInt32BE(c.cmdSN, 24);
    c.send({ bhs });
    const p = await c.next();
    expect(p?.opcode).toBe(0x3f);
    expect([0x04, 0x05]).toContain(p!.bhs[2]); // protocol error or command not supported
    expect(p!.data.subarray(0, 48)[0] & 0x3f).toBe(0x1c); // the rejected header comes back
    expect(await tur(c)).toBe(0);
    await othersStillServed();
  });

  it('a data digest error gets a Reject (DATA_DIGEST_ERROR) and the session goes on', async () => {
    const c = await client();
    await c.login(INITIATOR, IQN, { headerDigest: true, dataDigest: true });
    const write = c.scsiCommand([0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], { write: true, edtl: 512, data: Buffer.alloc(512, 0x5a) });
    c.send(write, { corruptDataDigest: true });
    const p = await c.next();
    expect(p?.opcode).toBe(0x3f);
    expect(p!.bhs[2]).toBe(0x02);
    // RFC 7143 §7.8: the command part of the PDU is processed and, at ERL 0,
    // the task ends with CHECK CONDITION, ABORTED COMMAND / PROTOCOL SERVICE
    // CRC ERROR (47h/05h); the session goes on.
    const r = await nextResponse(c);
    expect(r).toMatchObject({ status: 2, itt: write.bhs.readUInt32BE(16), senseKey: 0x0b, asc: 0x47, ascq: 0x05 });
    expect(c.closed).toBe(false);
    expect(await tur(c)).toBe(0);
    await othersStillServed();
  });

  it('a bad header digest drops the connection', async () => {
    const c = await client();
    await c.login(INITIATOR, IQN, { headerDigest: true });
    c.send(c.scsiCommand([0x00, 0, 0, 0, 0, 0]), { corruptHeaderDigest: true });
    expect(await c.waitClosed()).toBe(true);
    await othersStillServed();
  });

  it('a data segment longer than negotiated is refused and the connection dropped', async () => {
    const c = await client();
    const resp = await c.login(INITIATOR, IQN);
    const keys = resp.data.toString().split('\0');
    const mrdsl = Number(keys.find((k: string) => k.startsWith('MaxRecvDataSegmentLength='))?.split('=')[1] ?? 8192);
    const big = Buffer.alloc(mrdsl + 4096, 1);
    c.send(c.scsiCommand([0x2a, 0, 0, 0, 0, 0, 0, 0, 0x10, 0], { write: true, edtl: big.length, data: big }));
    const p = await c.next();
    if (p) expect(p.opcode).toBe(0x3f);
    expect(await c.waitClosed()).toBe(true);
    await othersStillServed();
  });

  it('a CmdSN outside the window is ignored and the session goes on', async () => {
    const c = await client();
    await c.login(INITIATOR, IQN);
    c.send(c.scsiCommand([0x00, 0, 0, 0, 0, 0], { cmdSN: (c.cmdSN + 100000) >>> 0 }));
    expect(await c.next(500)).toBeUndefined();
    expect(c.closed).toBe(false);
    expect(await tur(c)).toBe(0);
    await othersStillServed();
  });

  it('ABORT TASK for a command that never arrived plugs its CmdSN hole (RFC 7143 §11.5.1 b)', async () => {
    const c = await client();
    await c.login(INITIATOR, IQN);
    expect(await tur(c)).toBe(0); // consumes the POWER ON unit attention
    const lost = c.cmdSN++; // a command "lost" on the way: never sent
    const tmf = Buffer.alloc(48);
    tmf[0] = 0x40 | 0x02; // immediate Task Management Function Request
    tmf[1] = 0x80 | 0x01; // ABORT TASK
    tmf.writeUInt32BE(0x9999, 16); // ITT
    tmf.writeUInt32BE(0x4242, 20); // Referenced Task Tag
    tmf.writeUInt32BE(c.cmdSN, 24);
    tmf.writeUInt32BE(c.expStatSN, 28);
    tmf.writeUInt32BE(lost, 32); // RefCmdSN
    c.send({ bhs: tmf });
    let resp;
    do resp = await c.next();
    while (resp && resp.opcode !== 0x22);
    expect(resp?.bhs[2]).toBe(0); // function complete
    // The next command must run, not wait behind the hole.
    expect(await tur(c)).toBe(0);
  });
});
