// The /dev/fuse transport (src/fabrics/fuse/kernel/channel.ts, native/src/
// fuse_channel.c and fuse_poll.c) against the real kernel, in both reader
// modes (threads, poll on the event loop): mount, answer INIT and GETATTR with
// hand-built bytes (STYLE.md §13: never the production codecs), stat(1) the
// mount point from a child, unmount, and check the readers (threads and
// threadsafe function, or uv polls) are gone. Needs root and /dev/fuse.
//
// A FUSE mount whose server stops answering blocks every process that touches
// it, later tests included: every stat runs in a child with a time limit, and
// afterAll kills those children and lazily unmounts whatever is left.

import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FuseChannel, type FuseChannelMode } from '../../../src/fabrics/fuse/kernel/channel.js';
import { mountsAt } from '../../../src/fabrics/fuse/mountpoint.js';

const ADDON = fileURLToPath(new URL('../../../native/build/Release/lunkit_native.node', import.meta.url));
const canRun = process.getuid?.() === 0 && existsSync('/dev/fuse') && existsSync(ADDON);

// include/uapi/linux/fuse.h
const FUSE_GETATTR = 3;
const FUSE_FORGET = 2;
const FUSE_INIT = 26;
const FUSE_BATCH_FORGET = 42;
const ENOSYS = 38;

// ---- naive byte builders -----------------------------------------------------

type Field = [bytes: 2 | 4 | 8, value: number | bigint];

/** Little-endian fields one after another (the kernel's byte order on x86 and arm64). */
function le(...fields: Field[]): Buffer {
  const out = Buffer.alloc(fields.reduce((n, [b]) => n + b, 0));
  let at = 0;
  for (const [bytes, value] of fields) {
    if (bytes === 2) out.writeUInt16LE(Number(value), at);
    else if (bytes === 4) out.writeUInt32LE(Number(value), at);
    else out.writeBigUInt64LE(BigInt(value), at);
    at += bytes;
  }
  return out;
}

/** fuse_out_header: len u32, error i32 (negative errno), unique u64. */
function outHeader(payloadLength: number, error: number, unique: bigint): Buffer {
  const h = le([4, 16 + payloadLength], [4, 0], [8, unique]);
  h.writeInt32LE(error, 4);
  return h;
}

/** fuse_init_out, 64 bytes (protocol 7.23+). */
function initOut(kernelMinor: number, maxReadahead: number): Buffer {
  const ASYNC_READ = 1;
  const BIG_WRITES = 1 << 5;
  const MAX_PAGES = 1 << 22;
  return le(
    [4, 7], // major
    [4, Math.min(kernelMinor, 31)], // minor
    [4, maxReadahead],
    [4, ASYNC_READ | BIG_WRITES | MAX_PAGES], // flags
    [2, 16], // max_background
    [2, 12], // congestion_threshold
    [4, 1024 * 1024], // max_write
    [4, 1], // time_gran
    [2, 256], // max_pages
    [2, 0], // map_alignment
    [4, 0], // flags2
    [4, 0], [4, 0], [4, 0], [4, 0], [4, 0], [4, 0], [4, 0], // unused[7]
  );
}

/** fuse_attr_out for the root directory: attr_valid 0, so every stat asks again. */
function rootAttrOut(): Buffer {
  return le(
    [8, 0], [4, 0], [4, 0], // attr_valid, attr_valid_nsec, dummy
    [8, 1], [8, 0], [8, 0], // ino, size, blocks
    [8, 0], [8, 0], [8, 0], // atime, mtime, ctime
    [4, 0], [4, 0], [4, 0], // atimensec, mtimensec, ctimensec
    [4, 0o40755], [4, 2], [4, 0], [4, 0], [4, 0], [4, 4096], [4, 0], // mode, nlink, uid, gid, rdev, blksize, flags
  );
}

// ---- a minimal server over the channel ---------------------------------------------

interface Seen {
  opcode: number;
  fdIndex: number;
}

interface TestServer {
  channel: FuseChannel;
  seen: Seen[];
  initDone: Promise<void>;
}

interface ServeOptions {
  mode?: FuseChannelMode;
  /** GETATTR replies wait this long (requests pile up in flight). */
  delayMs?: number;
  buffers?: number;
}

/** Mounts dir and answers INIT, GETATTR (after delayMs) and ENOSYS to the rest; FORGETs get no reply. */
function serve(dir: string, threads: number, { mode = 'threads', delayMs = 0, buffers = 8 }: ServeOptions = {}): TestServer {
  const seen: Seen[] = [];
  let initDone!: () => void;
  const init = new Promise<void>((res) => (initDone = res));
  const channel: FuseChannel = FuseChannel.mount(
    dir,
    { fsname: 'lunkit-test', subtype: 'lunkittest', rootMode: 0o40755, uid: 0, gid: 0 },
    {
      mode,
      threads,
      buffers,
      onRequest(req, release, fdIndex) {
        // fuse_in_header: len u32, opcode u32, unique u64, nodeid u64, uid, gid, pid u32, total_extlen u16, padding u16.
        expect(req.length).toBe(req.readUInt32LE(0));
        const opcode = req.readUInt32LE(4);
        const unique = req.readBigUInt64LE(8);
        seen.push({ opcode, fdIndex });
        if (opcode === FUSE_FORGET || opcode === FUSE_BATCH_FORGET) {
          release();
        } else if (opcode === FUSE_INIT) {
          // fuse_init_in after the 40-byte header: major, minor, max_readahead, flags...
          const payload = initOut(req.readUInt32LE(44), req.readUInt32LE(48));
          release();
          expect(channel.reply(fdIndex, [outHeader(payload.length, 0, unique), payload])).toBe(true);
          initDone();
        } else if (opcode === FUSE_GETATTR && req.readBigUInt64LE(16) === 1n) {
          setTimeout(() => {
            const payload = rootAttrOut();
            channel.reply(fdIndex, [outHeader(payload.length, 0, unique), payload]);
            release();
          }, delayMs);
        } else {
          release();
          channel.reply(fdIndex, [outHeader(0, -ENOSYS, unique)]);
        }
      },
    },
  );
  return { channel, seen, initDone: init };
}

// ---- time limits and cleanup -----------------------------------------------------------

const children = new Set<ChildProcess>();
const mounted = new Set<string>();
const channels = new Set<FuseChannel>();

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      children.delete(child);
      const c = (err as { code?: unknown } | null)?.code;
      res({ code: err ? (typeof c === 'number' ? c : 1) : 0, stdout, stderr });
    });
    children.add(child);
  });
}

/** The inode number stat(1) sees, from a child killed after 5 s. */
async function statIno(dir: string): Promise<string> {
  const r = await run('stat', ['-c', '%i', dir], 5000);
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

let base = '';

beforeAll(async () => {
  if (canRun) base = await mkdtemp(join(tmpdir(), 'lunkit-kchan-'));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const dir of mounted) await run('umount', ['-l', dir], 5000);
  for (const ch of channels) await within(ch.close(), 5000, 'close').catch(() => undefined);
  if (base) await rm(base, { recursive: true, force: true });
});

async function newMountpoint(name: string): Promise<string> {
  const dir = join(base, name);
  await run('mkdir', ['-p', dir], 5000);
  mounted.add(dir);
  return dir;
}

describe.skipIf(!canRun)('FUSE kernel channel (/dev/fuse, as root)', () => {
  it.each(['threads', 'poll'] as const)('mounts, answers INIT and GETATTR, unmounts, and the readers exit (%s)', async (mode) => {
    const dir = await newMountpoint(`one-${mode}`);
    const server = serve(dir, 1, { mode });
    expect(server.channel.mode).toBe(mode);
    channels.add(server.channel);
    expect((await mountsAt(dir)).map((m) => [m.fsType, m.source])).toEqual([['fuse.lunkittest', 'lunkit-test']]);
    await within(server.initDone, 5000, 'INIT');
    expect(server.seen[0]).toEqual({ opcode: FUSE_INIT, fdIndex: 0 });

    expect(await statIno(dir)).toBe('1');
    expect(server.seen.some((s) => s.opcode === FUSE_GETATTR)).toBe(true);

    expect(server.channel.unmount()).toBe(true);
    await within(server.channel.closed, 5000, 'reader exit after unmount');
    expect(server.channel.exitCodes).toEqual(['ENODEV']);
    expect(await mountsAt(dir)).toEqual([]);
    expect(server.channel.unmount()).toBe(false); // not mounted any more
    await within(server.channel.close(), 5000, 'close');
  });

  it('serves one mount from two readers on a cloned fd', async () => {
    const dir = await newMountpoint('two');
    const server = serve(dir, 2, { delayMs: 30 });
    channels.add(server.channel);
    expect(server.channel.fds).toHaveLength(2);
    await within(server.initDone, 5000, 'INIT');
    // Which idle thread wins a request is up to the scheduler: ask until both have had one.
    const byFd = (i: number) => server.seen.filter((s) => s.opcode === FUSE_GETATTR && s.fdIndex === i).length;
    for (let round = 0; round < 10 && (byFd(0) === 0 || byFd(1) === 0); round++) {
      const inos = await Promise.all(Array.from({ length: 8 }, () => statIno(dir)));
      expect(inos).toEqual(Array(8).fill('1'));
    }
    expect(byFd(0)).toBeGreaterThan(0);
    expect(byFd(1)).toBeGreaterThan(0);

    expect(server.channel.unmount(true)).toBe(true);
    await within(server.channel.closed, 5000, 'reader exit after lazy unmount');
    expect(server.channel.exitCodes).toEqual(['ENODEV', 'ENODEV']);
    expect(await mountsAt(dir)).toEqual([]);
    await within(server.channel.close(), 5000, 'close');
  });

  // Node must be able to exit once the readers are gone: a process that only
  // mounts and then unmounts (or stops the readers) ends by itself.
  const exitScript = `
    const [addon, dir, mode, start] = process.argv.slice(1);
    const m = require(addon);
    const fd = m.fuseMount(dir, { fsname: 'lunkit-exit', subtype: 'lunkittest', rootMode: 0o40755, uid: 0, gid: 0,
      allowOther: false, defaultPermissions: false, maxRead: 0, readOnly: false });
    const bufs = [Buffer.allocUnsafeSlow(1056768), Buffer.allocUnsafeSlow(1056768)];
    let first = true;
    const h = m[start]([fd, m.fuseClone(fd)], bufs, (i) => {
      m.fuseReaderRelease(h, i);
      if (!first) return;
      first = false; // the kernel's INIT: leave without answering it
      if (mode === 'unmount') m.fuseUnmount(dir, false);
      else m.fuseReaderStop(h).then(() => { m.fuseUnmount(dir, true); console.log('stopped'); });
    }, (fdIndex, code) => console.log('exit', fdIndex, code));
  `;

  for (const [mode, start] of [
    ['unmount', 'fuseReaderStart'],
    ['stop', 'fuseReaderStart'],
    ['unmount', 'fuseReaderStartPoll'],
    ['stop', 'fuseReaderStartPoll'],
  ] as const) {
    it(`lets Node exit after ${mode} (${start})`, async () => {
      const dir = await newMountpoint(`exit-${mode}-${start}`);
      const r = await run(process.execPath, ['-e', exitScript, ADDON, dir, mode, start], 10_000);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const code = mode === 'unmount' ? 'ENODEV' : 'null';
      expect(r.stdout.split('\n').filter((l) => l.startsWith('exit')).sort()).toEqual([`exit 0 ${code}`, `exit 1 ${code}`]);
      expect(await mountsAt(dir)).toEqual([]);
    });
  }

  it('poll mode: one buffer serves requests that wait for it (polling pauses and resumes)', async () => {
    const dir = await newMountpoint('poll-one-buffer');
    const server = serve(dir, 1, { mode: 'poll', buffers: 1, delayMs: 20 });
    channels.add(server.channel);
    await within(server.initDone, 5000, 'INIT');
    const inos = await Promise.all(Array.from({ length: 6 }, () => statIno(dir)));
    expect(inos).toEqual(Array(6).fill('1'));
    expect(server.seen.filter((s) => s.opcode === FUSE_GETATTR).length).toBeGreaterThanOrEqual(6);
    expect(server.channel.unmount(true)).toBe(true);
    await within(server.channel.closed, 5000, 'reader exit after lazy unmount');
    expect(server.channel.exitCodes).toEqual(['ENODEV']);
    await within(server.channel.close(), 5000, 'close');
  });

  // A throw in onRequest is an uncaught exception, as in any I/O callback of Node's;
  // the poll goes on (the next request still arrives) once a handler has dealt with it.
  it('poll mode: an exception thrown by onRequest is an uncaught exception', async () => {
    const dir = await newMountpoint('poll-throw');
    const script = `
      const [addon, dir] = process.argv.slice(1);
      const m = require(addon);
      const fd = m.fuseMount(dir, { fsname: 'lunkit-throw', subtype: 'lunkittest', rootMode: 0o40755, uid: 0, gid: 0,
        allowOther: false, defaultPermissions: false, maxRead: 0, readOnly: false });
      process.on('uncaughtException', (e) => {
        console.log('uncaught', e.message);
        m.fuseUnmount(dir, true);
      });
      const h = m.fuseReaderStartPoll([fd], [Buffer.allocUnsafeSlow(1056768)], (i) => {
        m.fuseReaderRelease(h, i);
        throw new Error('boom');
      }, (fdIndex, code) => { console.log('exit', fdIndex, code); m.fuseReaderStop(h).then(() => console.log('stopped')); });
    `;
    const r = await run(process.execPath, ['-e', script, ADDON, dir], 10_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['uncaught boom', 'exit 0 ENODEV', 'stopped']);
    expect(await mountsAt(dir)).toEqual([]);
  });
});
