// Shared fakes for the filter tests: a backstore that records every call
// and can hold operations open, and a filter that records both directions.

import type { BackstoreCaps, BackstoreOps, Extent } from '../../../src/core/types.js';
import { BackstoreFilter } from '../../../src/backstores/filters/index.js';

export const FULL_CAPS: BackstoreCaps = Object.freeze({
  canWrite: true,
  canFlush: true,
  canFua: true,
  canUnmap: true,
  canWriteZeroes: true,
  canExtents: true,
  unmapReadsZero: true,
  thin: true,
  rotationRate: 1,
  canMultiConn: true,
});

/** A backstore that logs "store:<op>" and can be made slow with `gate`. */
export class RecordingStore implements BackstoreOps {
  readonly kind = 'fake';
  readonly name: string;
  readonly blockSize = 512 as const;
  readonly caps: BackstoreCaps = FULL_CAPS;
  size: number;
  /** While set, every operation awaits it before completing. */
  gate: Promise<void> | undefined;
  closed = false;
  readonly calls: string[] = [];

  constructor(
    readonly log: string[] = [],
    opts: { name?: string; size?: number } = {},
  ) {
    this.name = opts.name ?? 'fake0';
    this.size = opts.size ?? 1 << 20;
  }

  private async op(what: string): Promise<void> {
    this.log.push(`store:${what}`);
    this.calls.push(what);
    if (this.gate) await this.gate;
  }

  async read(buf: Buffer, offset: number): Promise<void> {
    await this.op(`read ${offset}+${buf.length}`);
    buf.fill(0xab);
  }

  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    return this.op(`write ${offset}+${buf.length}${opts?.fua ? ' fua' : ''}`);
  }

  flush(): Promise<void> {
    return this.op('flush');
  }

  unmap(offset: number, length: number): Promise<void> {
    return this.op(`trim ${offset}+${length}`);
  }

  writeZeroes(offset: number, length: number, opts?: { mayUnmap?: boolean }): Promise<void> {
    return this.op(`zeroes ${offset}+${length}${opts?.mayUnmap ? ' may-trim' : ''}`);
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    await this.op(`extents ${offset}+${length}`);
    return [{ offset, length, hole: false }];
  }

  async resize(size: number): Promise<void> {
    await this.op(`resize ${size}`);
    this.size = size;
  }

  async close(): Promise<void> {
    this.log.push('store:close');
    this.closed = true;
  }
}

/** A backstore with only the mandatory methods. */
export class MinimalStore implements BackstoreOps {
  readonly kind = 'minimal';
  readonly name = 'min0';
  readonly size = 1 << 20;
  readonly blockSize = 512 as const;
  readonly caps: BackstoreCaps = { ...FULL_CAPS, canUnmap: false, canWriteZeroes: false, canExtents: false, thin: false };
  async read(buf: Buffer): Promise<void> {
    buf.fill(0);
  }
  async write(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A filter that logs "<tag>><op>" on the way in and "<tag><<op>" on the way out. */
export class RecordingFilter extends BackstoreFilter {
  readonly type = 'record';

  constructor(
    next: BackstoreOps,
    readonly tag: string,
    readonly log: string[],
  ) {
    super(next);
  }

  private async around<T>(op: string, run: () => Promise<T>): Promise<T> {
    this.log.push(`${this.tag}>${op}`);
    try {
      return await run();
    } finally {
      this.log.push(`${this.tag}<${op}`);
    }
  }

  override read(buf: Buffer, offset: number): Promise<void> {
    return this.around('read', () => super.read(buf, offset));
  }
  override write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    return this.around('write', () => super.write(buf, offset, opts));
  }
  override flush(): Promise<void> {
    return this.around('flush', () => super.flush());
  }
  override close(): Promise<void> {
    return this.around('close', () => super.close());
  }
  protected override trim(offset: number, length: number): Promise<void> {
    return this.around('trim', () => super.trim(offset, length));
  }
  protected override zeroes(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    return this.around('zeroes', () => super.zeroes(offset, length, opts));
  }
  protected override mapExtents(offset: number, length: number): Promise<Extent[]> {
    return this.around('extents', () => super.mapExtents(offset, length));
  }
}

/** A promise with its resolve function, to hold operations open. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Settle every promise and return which ones failed, by code. */
export async function outcomes(ps: Array<Promise<unknown>>): Promise<string[]> {
  const rs = await Promise.allSettled(ps);
  return rs.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r.reason as { code?: unknown }).code)));
}
