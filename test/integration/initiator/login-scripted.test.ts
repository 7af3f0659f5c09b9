// The initiator's login against a scripted target on a local socket: every
// Login Response is hand-built bytes (RFC 7143 §11.13), every CHAP answer is
// computed here with node:crypto, so the initiator's state machine is checked
// against an independent peer: mutual CHAP, the C bit, operational keys,
// redirection and a target that fails mutual authentication.
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { IscsiConnection, isIscsiInitiatorError, login, randomIsid } from './api.js';
import { decodePdu } from '../../../src/protocols/iscsi/pdu.js';
import type { LoginRequestPdu } from '../../../src/protocols/iscsi/pdu-types.js';

const SECRET = 'initiator-secret';
const TSECRET = 'target-secret-16';
const CHALLENGE = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function kv(pairs: Array<[string, string]>): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

function keysOf(data: Buffer): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of data.toString('utf8').split('\0')) if (s) m.set(s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1));
  return m;
}

/** A Login Response, byte by byte (RFC 7143 §11.13). */
function loginResponse(o: {
  req: LoginRequestPdu;
  transit: boolean;
  cont?: boolean;
  csg: number;
  nsg: number;
  statSN: number;
  tsih?: number;
  statusClass?: number;
  statusDetail?: number;
  data: Buffer;
}): Buffer {
  const pad = (4 - (o.data.length % 4)) % 4;
  const b = Buffer.alloc(48 + o.data.length + pad);
  b[0] = 0x23;
  b[1] = (o.transit ? 0x80 : 0) | (o.cont ? 0x40 : 0) | (o.csg << 2) | (o.transit ? o.nsg : 0);
  b[5] = (o.data.length >> 16) & 0xff;
  b[6] = (o.data.length >> 8) & 0xff;
  b[7] = o.data.length & 0xff;
  b.writeUIntBE(o.req.isid, 8, 6);
  b.writeUInt16BE(o.tsih ?? 0, 14);
  b.writeUInt32BE(o.req.itt, 16);
  b.writeUInt32BE(o.statSN, 24);
  b.writeUInt32BE(o.req.cmdSN, 28);
  b.writeUInt32BE(o.req.cmdSN + 15, 32);
  b[36] = o.statusClass ?? 0;
  b[37] = o.statusDetail ?? 0;
  o.data.copy(b, 48);
  return b;
}

/** Serve one connection: hand each decoded Login Request to `script`, which answers with bytes. */
function scripted(script: (req: LoginRequestPdu, n: number) => Buffer | undefined): Promise<{ server: Server; port: number; requests: LoginRequestPdu[] }> {
  const requests: LoginRequestPdu[] = [];
  const server = createServer((sock: Socket) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 48) {
        const dsl = (buf[5] << 16) | (buf[6] << 8) | buf[7];
        const total = 48 + dsl + ((4 - (dsl % 4)) % 4);
        if (buf.length < total) return;
        const pdu = decodePdu(buf.subarray(0, 48), Buffer.alloc(0), buf.subarray(48, 48 + dsl)) as LoginRequestPdu;
        buf = buf.subarray(total);
        requests.push(pdu);
        const out = script(pdu, requests.length);
        if (out === undefined) sock.destroy();
        else sock.write(out);
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, requests })));
}

const md5 = (id: number, secret: string, challenge: Buffer): string =>
  `0x${createHash('md5').update(Buffer.concat([Buffer.of(id), Buffer.from(secret), challenge])).digest('hex')}`;

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  servers = [];
});

const base = { initiatorName: 'iqn.2024-01.org.lunkit.test:scripted', sessionType: 'Normal' as const, targetName: 'iqn.2024-01.org.lunkit.test:t', tsih: 0, cmdSN: 1, timeoutMs: 5000 };

describe('initiator login against a scripted target', () => {
  it('mutual CHAP, a continued (C bit) operational answer, and the negotiated parameters', async () => {
    let targetChallengeFromInitiator: { id: number; c: Buffer } | undefined;
    const { server, port, requests } = await scripted((req, n) => {
      const k = keysOf(req.data);
      switch (n) {
        case 1:
          expect([req.csg, req.transit]).toEqual([0, false]);
          expect(k.get('AuthMethod')).toBe('CHAP,None');
          expect(k.get('SessionType')).toBe('Normal');
          expect(k.get('TargetName')).toBe(base.targetName);
          return loginResponse({ req, transit: false, csg: 0, nsg: 0, statSN: 100, data: kv([['AuthMethod', 'CHAP'], ['TargetPortalGroupTag', '3']]) });
        case 2:
          expect(k.get('CHAP_A')).toBe('5');
          expect(req.expStatSN).toBe(101);
          return loginResponse({ req, transit: false, csg: 0, nsg: 0, statSN: 101, data: kv([['CHAP_A', '5'], ['CHAP_I', '7'], ['CHAP_C', `0x${CHALLENGE.toString('hex')}`]]) });
        case 3: {
          expect(k.get('CHAP_N')).toBe('alice');
          expect(k.get('CHAP_R')).toBe(md5(7, SECRET, CHALLENGE));
          expect([req.transit, req.nsg]).toEqual([true, 1]);
          const id = Number(k.get('CHAP_I'));
          const c = Buffer.from((k.get('CHAP_C') as string).slice(2), 'hex');
          expect(c.equals(CHALLENGE)).toBe(false);
          targetChallengeFromInitiator = { id, c };
          return loginResponse({ req, transit: true, csg: 0, nsg: 1, statSN: 102, data: kv([['CHAP_N', 'tgt'], ['CHAP_R', md5(id, TSECRET, c)]]) });
        }
        case 4:
          expect([req.csg, req.nsg, req.transit]).toEqual([1, 3, true]);
          expect(k.get('HeaderDigest')).toBe('CRC32C,None');
          expect(k.get('ImmediateData')).toBe('Yes');
          expect(k.get('MaxRecvDataSegmentLength')).toBe('262144');
          // First half of the answer, C=1: the initiator must ask for the rest.
          return loginResponse({
            req,
            transit: false,
            cont: true,
            csg: 1,
            nsg: 0,
            statSN: 103,
            data: kv([['HeaderDigest', 'CRC32C'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '4096'], ['ImmediateData', 'No']]),
          });
        case 5:
          expect(req.data.length).toBe(0);
          expect(req.transit).toBe(false);
          return loginResponse({
            req,
            transit: true,
            csg: 1,
            nsg: 3,
            statSN: 104,
            tsih: 0x1234,
            data: kv([['InitialR2T', 'Yes'], ['MaxBurstLength', '65536'], ['FirstBurstLength', '8192'], ['MaxConnections', '1'], ['ErrorRecoveryLevel', '0'], ['TargetAlias', 'scripted']]),
          });
        default:
          return undefined;
      }
    });
    servers.push(server);
    const conn = await IscsiConnection.connect({ host: '127.0.0.1', port });
    const res = await login(conn, {
      ...base,
      isid: randomIsid(),
      chap: { user: 'alice', password: SECRET },
      targetChap: { user: 'tgt', password: TSECRET },
      headerDigest: 'prefer',
    });
    conn.destroy();
    expect(targetChallengeFromInitiator).toBeDefined();
    expect(requests).toHaveLength(5);
    // ISID: random format (T=10b), the same in every request.
    expect(Math.floor(requests[0].isid / 2 ** 46)).toBe(2);
    expect(new Set(requests.map((r) => r.isid)).size).toBe(1);
    expect(new Set(requests.map((r) => r.itt)).size).toBe(1);
    expect(res).toMatchObject({ tsih: 0x1234, targetAlias: 'scripted', targetPortalGroupTag: 3, expCmdSN: 1, maxCmdSN: 16 });
    expect(res.params).toMatchObject({
      authMethod: 'CHAP',
      headerDigest: true,
      dataDigest: false,
      peerMaxRecvDataSegmentLength: 4096,
      maxRecvDataSegmentLength: 262144,
      immediateData: false,
      initialR2T: true,
      maxBurstLength: 65536,
      firstBurstLength: 8192,
    });
    expect(conn.expStatSN).toBe(105);
  });

  it('a target that answers mutual CHAP wrongly is ERR_ISCSI_TARGET_AUTH', async () => {
    const { server, port } = await scripted((req, n) => {
      if (n === 1) return loginResponse({ req, transit: false, csg: 0, nsg: 0, statSN: 1, data: kv([['AuthMethod', 'CHAP']]) });
      if (n === 2) return loginResponse({ req, transit: false, csg: 0, nsg: 0, statSN: 2, data: kv([['CHAP_A', '5'], ['CHAP_I', '1'], ['CHAP_C', '0x0102030405060708']]) });
      return loginResponse({ req, transit: true, csg: 0, nsg: 1, statSN: 3, data: kv([['CHAP_N', 'tgt'], ['CHAP_R', md5(1, 'not-the-secret', CHALLENGE)]]) });
    });
    servers.push(server);
    const conn = await IscsiConnection.connect({ host: '127.0.0.1', port });
    const err = await login(conn, { ...base, isid: randomIsid(), chap: { user: 'a', password: SECRET }, targetChap: { user: 'tgt', password: TSECRET } }).catch((e: unknown) => e);
    conn.destroy();
    expect(isIscsiInitiatorError(err, 'ERR_ISCSI_TARGET_AUTH')).toBe(true);
  });

  it('status classes map to typed errors (redirect with TargetAddress, not found, out of resources)', async () => {
    const cases: Array<[number, number, string, Array<[string, string]>]> = [
      [0x01, 0x01, 'ERR_ISCSI_LOGIN_REDIRECT', [['TargetAddress', '10.9.8.7:3261,1']]],
      [0x02, 0x03, 'ERR_ISCSI_LOGIN_NOT_FOUND', []],
      [0x02, 0x02, 'ERR_ISCSI_LOGIN_FORBIDDEN', []],
      [0x02, 0x07, 'ERR_ISCSI_LOGIN_REJECTED', []],
      [0x03, 0x02, 'ERR_ISCSI_LOGIN_TARGET', []],
    ];
    for (const [cls, detail, code, keys] of cases) {
      const { server, port } = await scripted((req) => loginResponse({ req, transit: false, csg: 0, nsg: 0, statSN: 0, statusClass: cls, statusDetail: detail, data: kv(keys) }));
      servers.push(server);
      const conn = await IscsiConnection.connect({ host: '127.0.0.1', port });
      const err = await login(conn, { ...base, isid: randomIsid() }).catch((e: unknown) => e);
      conn.destroy();
      expect(isIscsiInitiatorError(err, code as never)).toBe(true);
      if (isIscsiInitiatorError(err)) expect([err.statusClass, err.statusDetail]).toEqual([cls, detail]);
      if (code === 'ERR_ISCSI_LOGIN_REDIRECT' && isIscsiInitiatorError(err)) expect(err.targetAddress).toBe('10.9.8.7:3261,1');
    }
  });

  it('a silent target is ERR_ISCSI_TIMEOUT', async () => {
    const { server, port } = await scripted(() => Buffer.alloc(0));
    servers.push(server);
    const conn = await IscsiConnection.connect({ host: '127.0.0.1', port });
    const err = await login(conn, { ...base, isid: randomIsid(), timeoutMs: 300 }).catch((e: unknown) => e);
    conn.destroy();
    expect(isIscsiInitiatorError(err, 'ERR_ISCSI_TIMEOUT')).toBe(true);
  });
});
