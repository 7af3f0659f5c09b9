// Our NBD client library against real servers nobody here wrote: nbdkit
// (memory and file plugins) and qemu-nbd. Handshake, LIST and INFO, read and
// write round trips (split at the maximum block size), flush, trim, write
// zeroes, block status, refused options and a server killed mid-request.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient, NbdTransmissionFlag, isNbdClientError } from '../../src/nbd-client/index.js';
import { freePort, startNbdkit, startQemuNbd, type NbdPeer } from '../integration/nbd-client/peers.js';

const MiB = 1024 * 1024;

describe('nbdkit memory 1G (Unix socket)', () => {
  let peer: NbdPeer;
  beforeAll(async () => {
    peer = await startNbdkit(['memory', '1G']);
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it('negotiates GO with structured replies and base:allocation', async () => {
    const c = await NbdClient.connect(peer.url());
    try {
      expect(c.negotiatedVia).toBe('go');
      expect(c.size).toBe(1024 * MiB);
      expect(c.structuredReplies).toBe(true);
      expect(c.canBlockStatus).toBe(true);
      expect(c.readOnly).toBe(false);
      expect(c.canFlush && c.canTrim && c.canWriteZeroes).toBe(true);
    } finally {
      await c.disconnect();
    }
    expect(c.state).toBe('closed');
  });

  it('lists the export and answers INFO', async () => {
    const list = await NbdClient.list(peer.url());
    expect(list.map((e) => e.name)).toEqual(['']);
    const info = await NbdClient.info(peer.url());
    expect(info.size).toBe(1024 * MiB);
    expect(info.transmissionFlags & NbdTransmissionFlag.HAS_FLAGS).toBeTruthy();
  });

  it('writes and reads back 80 MiB pipelined across the maximum block size, then flushes', async () => {
    const c = await NbdClient.connect(peer.url());
    try {
      const data = randomBytes(80 * MiB);
      await c.write(data, 3 * MiB);
      const back = await c.read(3 * MiB, data.length);
      expect(back.equals(data)).toBe(true);
      await c.flush();
      // Many small requests at once, replies matched by cookie.
      const small = await Promise.all(Array.from({ length: 64 }, (_, i) => c.read(3 * MiB + i * 4096, 4096)));
      small.forEach((b, i) => expect(b.equals(data.subarray(i * 4096, (i + 1) * 4096))).toBe(true));
    } finally {
      await c.disconnect();
    }
  });

  it('trims to a hole that reads as zeroes, and write-zeroes with NO_HOLE', async () => {
    const c = await NbdClient.connect(peer.url());
    try {
      await c.write(Buffer.alloc(4 * MiB, 0xab), 512 * MiB);
      let ext = await c.blockStatus(512 * MiB, 4 * MiB);
      expect(ext[0]).toMatchObject({ offset: 512 * MiB, hole: false });
      await c.trim(512 * MiB, 4 * MiB);
      ext = await c.blockStatus(512 * MiB, 4 * MiB);
      expect(ext[0]).toMatchObject({ offset: 512 * MiB, length: 4 * MiB, hole: true, zero: true });
      expect((await c.read(512 * MiB, 4 * MiB)).equals(Buffer.alloc(4 * MiB))).toBe(true);
      await c.write(Buffer.alloc(65536, 1), 600 * MiB);
      await c.writeZeroes(600 * MiB, 65536, { noHole: true });
      expect((await c.read(600 * MiB, 65536)).equals(Buffer.alloc(65536))).toBe(true);
    } finally {
      await c.disconnect();
    }
  });

  it('rejects a read past the end before sending it', async () => {
    const c = await NbdClient.connect(peer.url());
    try {
      await expect(c.read(1024 * MiB - 512, 1024)).rejects.toMatchObject({ code: 'ERR_NBD_INVALID_ARGUMENT' });
    } finally {
      await c.disconnect();
    }
  });
});

describe('nbdkit file (TCP)', () => {
  let peer: NbdPeer;
  let dir: string;
  let file: string;
  const image = randomBytes(8 * MiB);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-nbdc-'));
    file = join(dir, 'disk.img');
    await writeFile(file, image);
    peer = await startNbdkit(['file', file], { tcpPort: await freePort() });
  });
  afterAll(async () => {
    await peer?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the file, writes with FUA and the file changes', async () => {
    const c = await NbdClient.connect(peer.url());
    try {
      expect(c.size).toBe(8 * MiB);
      expect((await c.read(0, 8 * MiB)).equals(image)).toBe(true);
      const patch = randomBytes(65536);
      await c.write(patch, MiB, { fua: c.canFua });
      await c.flush();
      const onDisk = await readFile(file);
      expect(onDisk.subarray(MiB, MiB + 65536).equals(patch)).toBe(true);
    } finally {
      await c.disconnect();
    }
  });

  it('a server killed mid-request rejects every pending request with ERR_NBD_DISCONNECTED', async () => {
    const p2 = await startNbdkit(['--filter=delay', 'memory', '64M', 'rdelay=5'], { tcpPort: await freePort() });
    try {
      const c = await NbdClient.connect(p2.url());
      const pending = Array.from({ length: 8 }, (_, i) => c.read(i * 4096, 4096));
      const settled = Promise.allSettled(pending);
      await new Promise((r) => setTimeout(r, 200));
      await p2.kill();
      const results = await settled;
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect(isNbdClientError((r as PromiseRejectedResult).reason, 'ERR_NBD_DISCONNECTED')).toBe(true);
      }
      expect(c.state).toBe('closed');
    } finally {
      await p2.stop();
    }
  });
});

describe('qemu-nbd', () => {
  let peer: NbdPeer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-nbdc-'));
    const file = join(dir, 'q.img');
    await writeFile(file, Buffer.alloc(0));
    await (await import('node:fs/promises')).truncate(file, 64 * MiB);
    peer = await startQemuNbd(file, 'qdisk');
  });
  afterAll(async () => {
    await peer?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists the named export and round-trips data', async () => {
    const list = await NbdClient.list(peer.url());
    expect(list.map((e) => e.name)).toContain('qdisk');
    const c = await NbdClient.connect(peer.url('qdisk'));
    try {
      expect(c.size).toBe(64 * MiB);
      expect(c.negotiatedVia).toBe('go');
      const data = randomBytes(3 * MiB + 4096);
      await c.write(data, 5 * MiB);
      await c.flush();
      expect((await c.read(5 * MiB, data.length)).equals(data)).toBe(true);
      const ext = await c.blockStatus(5 * MiB, MiB);
      expect(ext[0]).toMatchObject({ offset: 5 * MiB, hole: false });
      await c.trim(5 * MiB, MiB);
      await c.writeZeroes(6 * MiB, MiB);
      expect((await c.read(6 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    } finally {
      await c.disconnect();
    }
  });

  it('an export that does not exist is ERR_NBD_OPTION_REFUSED', async () => {
    const err = await NbdClient.connect(peer.url('nope')).catch((e: unknown) => e);
    expect(isNbdClientError(err, 'ERR_NBD_OPTION_REFUSED')).toBe(true);
  });
});
