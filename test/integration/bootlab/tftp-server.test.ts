// The boot-lab TFTP server on 127.0.0.1, driven by the small raw client in
// test/helpers/tftp-client.ts: transfers, negotiation, loss, refusals, limits.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTftpServer, type TftpServer, type TftpServerOptions } from '../../../src/bootlab/tftp-server.js';
import { TestClient, errorOf, fetchTftp, parseOack, rawAck, rawError, rawRequest } from '../../helpers/tftp-client.js';

let root: string;
const small = randomBytes(1300);
const exact = randomBytes(512 * 4);
const big = randomBytes(8 * 70_000 + 3);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lunkit-tftp-'));
  await writeFile(path.join(root, 'small.bin'), small);
  await writeFile(path.join(root, 'exact.bin'), exact);
  await writeFile(path.join(root, 'big.bin'), big);
  await writeFile(path.join(root, 'empty.bin'), Buffer.alloc(0));
  await writeFile(path.join(root, 'text.txt'), 'a\nb\rc');
  await mkdir(path.join(root, 'sub'));
  await writeFile(path.join(root, 'sub', 'inner.bin'), small);
  await symlink('/etc/passwd', path.join(root, 'escape'));
  await symlink('sub/inner.bin', path.join(root, 'inside-link'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const servers: TftpServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(extra: Partial<TftpServerOptions> = {}): Promise<{ server: TftpServer; port: number }> {
  const server = await startTftpServer({ root, host: '127.0.0.1', port: 0, ...extra });
  servers.push(server);
  return { server, port: server.address().port };
}

async function client(): Promise<TestClient> {
  const c = await TestClient.open();
  clients.push(c);
  return c;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('tftp server: transfers', () => {
  it('serves a plain RRQ in 512-byte blocks with a fresh TID', async () => {
    const { server, port } = await serve();
    const c = await client();
    const got = await fetchTftp(c, port, 'small.bin');
    expect(sha(got.data)).toBe(sha(small));
    expect(got.oack).toBeNull();
    expect(got.tid).not.toBe(port);
    expect(c.dataLog).toEqual([1, 2, 3]);
    await waitFor(() => server.stats().active === 0);
    expect(server.stats()).toMatchObject({ transfers: 1, active: 0, bytesSent: small.length, errors: 0 });
  });

  it('negotiates blksize, tsize, timeout and windowsize in an OACK', async () => {
    const { port } = await serve({ maxBlksize: 1024, maxWindowsize: 4 });
    const c = await client();
    const got = await fetchTftp(c, port, '/big.bin', {
      options: [['BlkSize', '1428'], ['tsize', '0'], ['timeout', '3'], ['windowsize', '16'], ['multicast', '']],
    });
    expect(got.oack).toEqual({ blksize: '1024', tsize: String(big.length), timeout: '3', windowsize: '4' });
    expect(sha(got.data)).toBe(sha(big));
  });

  it('ends a file that is a multiple of the block size with an empty DATA', async () => {
    const { port } = await serve();
    const c = await client();
    const got = await fetchTftp(c, port, 'exact.bin');
    expect(sha(got.data)).toBe(sha(exact));
    expect(c.dataLog).toEqual([1, 2, 3, 4, 5]);
  });

  it('sends a single empty DATA for an empty file', async () => {
    const { port } = await serve();
    const c = await client();
    const got = await fetchTftp(c, port, 'empty.bin');
    expect(got.data.length).toBe(0);
    expect(c.dataLog).toEqual([1]);
  });

  it('rolls block numbers over past 65535 (blksize 8, windowsize 64)', async () => {
    const { port } = await serve();
    const c = await client();
    const got = await fetchTftp(c, port, 'big.bin', { options: [['blksize', '8'], ['windowsize', '64']] });
    expect(got.oack).toEqual({ blksize: '8', windowsize: '64' });
    expect(got.data.length).toBe(big.length);
    expect(sha(got.data)).toBe(sha(big));
    expect(c.dataLog).toContain(0);
  });

  it('retransmits a block whose ACK was lost and the file arrives intact', async () => {
    const { server, port } = await serve({ timeoutMs: 150 });
    const c = await client();
    const got = await fetchTftp(c, port, 'exact.bin', { dropAckOf: 2 });
    expect(sha(got.data)).toBe(sha(exact));
    expect(c.dataLog).toEqual([1, 2, 2, 3, 4, 5]);
    await waitFor(() => server.stats().active === 0);
    expect(server.stats().bytesSent).toBe(exact.length + 512);
  });

  it('does not answer duplicate ACKs with duplicate DATA (Sorcerer\'s Apprentice)', async () => {
    const { port } = await serve({ timeoutMs: 5000 });
    const c = await client();
    const got = await fetchTftp(c, port, 'exact.bin', { duplicateAcks: true });
    expect(sha(got.data)).toBe(sha(exact));
    expect(await c.drain(200)).toEqual([]);
    expect(c.dataLog).toEqual([1, 2, 3, 4, 5]);
  });

  it('restarts a window at k+1 when the client ACKs block k inside it', async () => {
    const { port } = await serve({ timeoutMs: 5000 });
    const c = await client();
    c.send(rawRequest(1, 'exact.bin', 'octet', [['windowsize', '4']]), port);
    const oack = await c.recv();
    expect(parseOack(oack.raw)).toEqual({ windowsize: '4' });
    c.send(rawAck(0), oack.from.port);
    for (let i = 0; i < 4; i++) await c.recv();
    expect(c.dataLog).toEqual([1, 2, 3, 4]);
    c.send(rawAck(2), oack.from.port); // "3 and 4 were lost"
    for (let i = 0; i < 3; i++) await c.recv();
    expect(c.dataLog).toEqual([1, 2, 3, 4, 3, 4, 5]);
    c.send(rawAck(5), oack.from.port);
    expect(await c.drain(100)).toEqual([]);
  });

  it('serves netascii with CR LF / CR NUL and leaves tsize out', async () => {
    const { port } = await serve();
    const c = await client();
    const got = await fetchTftp(c, port, 'text.txt', { mode: 'NetASCII', options: [['tsize', '0'], ['blksize', '512']] });
    expect(got.oack).toEqual({ blksize: '512' });
    expect(got.data).toEqual(Buffer.from('a\r\nb\r\0c'));
  });

  it('serves virtual files before the root, with or without a leading slash', async () => {
    const script = Buffer.from('#!ipxe\nchain http://x/boot\n');
    const { port } = await serve({ files: new Map([['boot.ipxe', script], ['small.bin', Buffer.from('virtual')]]) });
    const c = await client();
    expect((await fetchTftp(c, port, 'boot.ipxe')).data).toEqual(script);
    expect((await fetchTftp(c, port, '/small.bin')).data.toString()).toBe('virtual');
  });

  it('follows symlinks that stay inside the root', async () => {
    const { port } = await serve();
    const c = await client();
    expect(sha((await fetchTftp(c, port, 'inside-link')).data)).toBe(sha(small));
    expect(sha((await fetchTftp(c, port, '//sub/./inner.bin')).data)).toBe(sha(small));
  });
});

describe('tftp server: refusals', () => {
  const cases: [string, number][] = [
    ['../etc/passwd', 2],
    ['sub/../../etc/passwd', 2],
    ['/etc/passwd', 1],
    ['escape', 2],
    ['sub', 2],
    ['/', 2],
    ['missing.bin', 1],
  ];
  it.each(cases)('refuses %s with ERROR %i and keeps serving', async (name, code) => {
    const { server, port } = await serve();
    const c = await client();
    await expect(fetchTftp(c, port, name)).rejects.toMatchObject({ code });
    expect(sha((await fetchTftp(c, port, 'small.bin')).data)).toBe(sha(small));
    expect(server.stats().errors).toBe(1);
  });

  it('refuses a WRQ with ERROR 2', async () => {
    const { port } = await serve();
    const c = await client();
    c.send(rawRequest(2, 'upload.bin'), port);
    const r = await c.recv();
    expect(errorOf(r).code).toBe(2);
  });

  it('answers garbage on the request port with ERROR 4 and ignores ERROR packets', async () => {
    const { port } = await serve();
    const c = await client();
    c.send(Buffer.from([0, 1, 0x61]), port);
    expect(errorOf(await c.recv()).code).toBe(4);
    c.send(Buffer.from([0, 9]), port);
    expect(errorOf(await c.recv()).code).toBe(4);
    c.send(rawError(0, 'hello'), port);
    expect(await c.drain(100)).toEqual([]);
  });

  it('answers a stranger on a transfer socket with ERROR 5 and carries on', async () => {
    const { port } = await serve({ timeoutMs: 5000 });
    const c = await client();
    const stranger = await client();
    c.send(rawRequest(1, 'exact.bin'), port);
    const d1 = await c.recv();
    expect(d1.opcode).toBe(3);
    stranger.send(rawAck(1), d1.from.port);
    expect(errorOf(await stranger.recv()).code).toBe(5);
    c.send(rawAck(1), d1.from.port);
    const d2 = await c.recv();
    expect(d2.raw.readUInt16BE(2)).toBe(2);
    expect(d2.from.port).toBe(d1.from.port);
  });

  it('ends the transfer when the client answers the OACK with ERROR 8', async () => {
    const { server, port } = await serve();
    const c = await client();
    c.send(rawRequest(1, 'small.bin', 'octet', [['blksize', '1024']]), port);
    const oack = await c.recv();
    expect(oack.opcode).toBe(6);
    c.send(rawError(8, 'no thanks'), oack.from.port);
    await waitFor(() => server.stats().active === 0);
    expect(await c.drain(100)).toEqual([]);
  });

  it('gives up with an ERROR after the configured retries', async () => {
    const { server, port } = await serve({ timeoutMs: 50, retries: 2 });
    const c = await client();
    c.send(rawRequest(1, 'small.bin'), port);
    const got = [await c.recv(), await c.recv(), await c.recv(), await c.recv()];
    expect(got.map((r) => r.opcode)).toEqual([3, 3, 3, 5]);
    await waitFor(() => server.stats().active === 0);
  });
});

describe('tftp server: limits and shutdown', () => {
  it('answers RRQs beyond maxTransfers with a busy ERROR 0', async () => {
    const { server, port } = await serve({ maxTransfers: 2, timeoutMs: 5000 });
    const a = await client();
    const b = await client();
    const extra = await client();
    a.send(rawRequest(1, 'small.bin'), port);
    b.send(rawRequest(1, 'small.bin'), port);
    await a.recv();
    await b.recv();
    extra.send(rawRequest(1, 'small.bin'), port);
    const busy = errorOf(await extra.recv());
    expect(busy.code).toBe(0);
    expect(busy.message).toMatch(/busy/i);
    expect(server.stats().active).toBe(2);
  });

  it('ignores a retransmitted RRQ while the first transfer runs', async () => {
    const { server, port } = await serve({ timeoutMs: 5000 });
    const c = await client();
    c.send(rawRequest(1, 'small.bin'), port);
    c.send(rawRequest(1, 'small.bin'), port);
    await c.recv();
    expect(await c.drain(150)).toEqual([]);
    expect(server.stats().transfers).toBe(1);
  });

  it('close() ends a transfer in flight with an ERROR and closes every socket', async () => {
    const { server, port } = await serve({ timeoutMs: 5000 });
    const c = await client();
    c.send(rawRequest(1, 'big.bin'), port);
    const d1 = await c.recv();
    expect(d1.opcode).toBe(3);
    await server.close();
    const bye = await c.recv();
    expect(errorOf(bye).code).toBe(0);
    expect(server.stats().active).toBe(0);
    c.send(rawAck(1), d1.from.port);
    c.send(rawRequest(1, 'small.bin'), port);
    expect(await c.drain(150)).toEqual([]);
  });
});
