// NBD_OPT_STARTTLS driven by hand (proto.md "TLS support"): NOTLS answers
// ERR_POLICY; FORCEDTLS (require) answers ERR_TLS_REQD to everything but
// STARTTLS/ABORT and closes on EXPORT_NAME; after the upgrade haggling goes on
// over TLS with no state kept from before; STARTTLS twice is ERR_INVALID; a CA
// in the config makes client certificates mandatory. The servers come from
// configuration files' `nbd.tls` through LunkitRuntime (the daemon's path).
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { Wire } from '../../helpers/nbd-wire.js';
import { makeTestCerts, type TestCerts } from './tls-certs.js';

let dir: string;
let certs: TestCerts;
const runtimes: Record<'plain' | 'required' | 'optional' | 'mutual', LunkitRuntime> = {} as never;

const ACK = 1;
const ERR_POLICY = 0x80000002;
const ERR_INVALID = 0x80000003;
const ERR_TLS_REQD = 0x80000005;

/** Option request built by hand: IHAVEOPT, option, length, data. */
function opt(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(16);
  h.write('IHAVEOPT', 0, 'latin1');
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

/** NBD_OPT_INFO/GO data: name length, name, no info requests. */
function infoData(name: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return b;
}

function port(rt: LunkitRuntime): number {
  return rt.nbdAddresses()[0].port;
}

async function open(p: number): Promise<Wire> {
  const sock = connect(p, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const w = new Wire(sock);
  const g = await w.read(18);
  expect(g.subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
  sock.write(Buffer.from([0, 0, 0, 3])); // C_FIXED_NEWSTYLE | C_NO_ZEROES
  return w;
}

/** Sends STARTTLS, expects the ACK, then does the client side of the TLS handshake. */
async function startTls(w: Wire, opts: { cert?: Buffer; key?: Buffer } = {}): Promise<Wire> {
  w.sock.write(opt(5));
  expect((await w.optionReply()).type).toBe(ACK);
  w.sock.removeAllListeners('data');
  const secure: TLSSocket = tlsConnect({ socket: w.sock, ca: readFileSync(certs.caFile), servername: 'localhost', ...opts });
  secure.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  return new Wire(secure as unknown as Socket);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-tls-'));
  certs = await makeTestCerts(dir);
  const base = (tls: Record<string, unknown> | undefined): Record<string, unknown> => ({
    backstores: { ram: { type: 'ramdisk', size: '1M' } },
    nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'ram' } }, ...(tls ? { tls } : {}) },
  });
  const files = { certFile: certs.certFile, keyFile: certs.keyFile };
  runtimes.plain = await LunkitRuntime.start(parseConfig(base(undefined)));
  runtimes.required = await LunkitRuntime.start(parseConfig(base({ ...files, require: true })));
  runtimes.optional = await LunkitRuntime.start(parseConfig(base({ ...files, require: false })));
  runtimes.mutual = await LunkitRuntime.start(parseConfig(base({ ...files, caFile: certs.caFile, require: true })));
}, 60_000);

afterAll(async () => {
  for (const rt of Object.values(runtimes)) await rt.stop(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('NBD STARTTLS', () => {
  it('a server without TLS answers ERR_POLICY and haggling goes on', async () => {
    const w = await open(port(runtimes.plain));
    w.sock.write(opt(5));
    expect((await w.optionReply()).type).toBe(ERR_POLICY);
    w.sock.write(opt(6, infoData('disk')));
    const r = await w.optionReply();
    expect(r.type).toBe(3); // NBD_REP_INFO: still serving plain clients
    w.sock.destroy();
  });

  it('require: every option but STARTTLS/ABORT is ERR_TLS_REQD, then TLS, then haggling over TLS', async () => {
    const w = await open(port(runtimes.required));
    for (const o of [opt(3), opt(6, infoData('disk')), opt(7, infoData('disk')), opt(8), opt(99)]) {
      w.sock.write(o);
      expect((await w.optionReply()).type).toBe(ERR_TLS_REQD);
    }
    w.sock.write(opt(5, Buffer.from('x'))); // STARTTLS takes no data
    expect((await w.optionReply()).type).toBe(ERR_INVALID);
    const t = await startTls(w);
    t.sock.write(opt(5)); // STARTTLS twice
    expect((await t.optionReply()).type).toBe(ERR_INVALID);
    t.sock.write(opt(3)); // LIST now works
    const list = await t.optionReply();
    expect(list.type).toBe(2); // NBD_REP_SERVER
    expect(list.data.subarray(4).toString()).toBe('disk');
    expect((await t.optionReply()).type).toBe(ACK);
    // GO, then a READ with a simple reply over TLS.
    t.sock.write(opt(7, infoData('disk')));
    for (;;) {
      const r = await t.optionReply();
      if (r.type === ACK) break;
      expect(r.type).toBe(3);
    }
    const req = Buffer.alloc(28);
    req.writeUInt32BE(0x25609513, 0);
    req.writeBigUInt64BE(42n, 8);
    req.writeUInt32BE(4096, 24);
    t.sock.write(req);
    const rep = await t.read(16);
    expect(rep.readUInt32BE(0)).toBe(0x67446698);
    expect(rep.readUInt32BE(4)).toBe(0);
    expect(rep.readBigUInt64BE(8)).toBe(42n);
    expect((await t.read(4096)).length).toBe(4096);
    t.sock.destroy();
  });

  it('require: NBD_OPT_EXPORT_NAME before TLS closes the connection', async () => {
    const w = await open(port(runtimes.required));
    w.sock.write(opt(1, Buffer.from('disk')));
    await expect(w.read(1)).rejects.toThrow('closed');
  });

  it('state negotiated before STARTTLS is forgotten (structured replies)', async () => {
    const w = await open(port(runtimes.optional));
    w.sock.write(opt(8)); // STRUCTURED_REPLY in plain text: allowed in optional mode
    expect((await w.optionReply()).type).toBe(ACK);
    const t = await startTls(w);
    t.sock.write(opt(10, Buffer.concat([infoData('disk').subarray(0, 8), Buffer.from([0, 0, 0, 1, 0, 0, 0, 15]), Buffer.from('base:allocation')])));
    expect((await t.optionReply()).type).toBe(ERR_INVALID); // SET_META_CONTEXT needs structured replies again
    t.sock.write(opt(7, infoData('disk')));
    for (;;) {
      const r = await t.optionReply();
      if (r.type === ACK) break;
    }
    const req = Buffer.alloc(28);
    req.writeUInt32BE(0x25609513, 0);
    req.writeBigUInt64BE(7n, 8);
    req.writeUInt32BE(512, 24);
    t.sock.write(req);
    expect((await t.read(16)).readUInt32BE(0)).toBe(0x67446698); // a simple reply, not structured
    await t.read(512);
    t.sock.destroy();
  });

  it('optional: plain clients are served', async () => {
    const w = await open(port(runtimes.optional));
    w.sock.write(opt(6, infoData('disk')));
    expect((await w.optionReply()).type).toBe(3);
    w.sock.destroy();
  });

  it('with a CA: a client certificate signed by it is accepted, none is refused', async () => {
    const ok = await startTls(await open(port(runtimes.mutual)), {
      cert: readFileSync(join(certs.dir, 'client-cert.pem')),
      key: readFileSync(join(certs.dir, 'client-key.pem')),
    });
    ok.sock.write(opt(3));
    expect((await ok.optionReply()).type).toBe(2);
    ok.sock.destroy();
    // TLS 1.3: the client may finish its side before the server refuses; the server then closes.
    const rogue = { cert: readFileSync(join(certs.dir, 'rogue-cert.pem')), key: readFileSync(join(certs.dir, 'rogue-key.pem')) };
    for (const creds of [{}, rogue]) {
      const bad = await startTls(await open(port(runtimes.mutual)), creds).catch(() => undefined);
      if (bad) {
        bad.sock.write(opt(3));
        await expect(bad.read(20)).rejects.toThrow('closed');
      }
    }
  });
});
