// File I/O and ordering helpers for the qcow2 engine: whole-buffer
// pread/pwrite on a raw fd (callback fs API, as the file backstore measured
// cheaper than FileHandle), a coalescing fdatasync, a mutex and a keyed lock.

import fs from 'node:fs';

/** Read exactly buf.length bytes at pos; bytes past the end of the file read as zeroes. */
export async function preadFull(fd: number, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, buf, done, buf.length - done, pos + done, (err, got) => (err ? reject(err) : resolve(got)));
    });
    if (n === 0) {
      buf.fill(0, done);
      return;
    }
    done += n;
  }
}

export async function pwriteFull(fd: number, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    done += await new Promise<number>((resolve, reject) => {
      fs.write(fd, buf, done, buf.length - done, pos + done, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

export function openFd(path: string, flags: number, mode = 0o644): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * fdatasync with coalescing: sync() resolves once an fdatasync that started
 * after the call has completed, so it covers every write completed before the
 * call. Callers that arrive while one runs share the next one.
 */
export class Syncer {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  /** `before` runs ahead of each fdatasync (the refcount updates waiting to be written). */
  constructor(
    private readonly fd: () => number,
    private readonly before: () => Promise<void> = () => Promise.resolve(),
  ) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.next) {
      this.next = this.running.then(
        () => this.startQueued(),
        () => this.startQueued(),
      );
    }
    return this.next;
  }

  private startQueued(): Promise<void> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const p = this.before()
      .then(() => fdatasync(this.fd()))
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.running = p;
    return p;
  }
}

/** A FIFO mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Run fn alone; later callers wait for it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One mutex per key, dropped when idle (the per-guest-cluster allocation lock). */
export class KeyedLock {
  private readonly tails = new Map<number, Promise<void>>();

  async run<T>(key: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** True when some caller holds or waits for the key. */
  busy(key: number): boolean {
    return this.tails.has(key);
  }
}
