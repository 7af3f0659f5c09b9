// The filter contract: nbdkit-style middleware between the core and a
// backstore (STYLE.md §4, nbdkit `filters/`). A filter wraps a BackstoreOps
// (`next`) and is itself a BackstoreOps with the same contract, so filters
// stack. It forwards everything to `next` unless it has a reason not to, and
// its caps derive from next's caps: a filter may only narrow them.
//
// Every data operation goes through one hook, gate(kind, offset, length),
// before it is forwarded. The hook returns undefined to forward at once
// (no extra allocation or tick on the hot path), a promise to wait for first
// (delay), or throws to fail the operation without forwarding it (error,
// readonly). A filter that needs to act on the way out overrides the public
// method (read, write, flush) or the protected one behind an optional method
// (trim, zeroes, mapExtents) and calls super.

import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';

/** The operation kinds a filter sees, named as NBD commands are. */
export const FILTER_OP_KINDS = ['read', 'write', 'flush', 'trim', 'zeroes', 'extents'] as const;
export type FilterOpKind = (typeof FILTER_OP_KINDS)[number];

/** A per-kind counter record, all zero. */
export function zeroCounts(): Record<FilterOpKind, number> {
  return { read: 0, write: 0, flush: 0, trim: 0, zeroes: 0, extents: 0 };
}

export abstract class BackstoreFilter implements BackstoreOps {
  /** The filter's type as named in the configuration ("error", "delay", "readonly"). */
  abstract readonly type: string;

  // Present exactly when next has them: the core (and NBD) still test for
  // the method, so a filter must not invent one its inner store lacks.
  declare readonly unmap?: (offset: number, length: number) => Promise<void>;
  declare readonly writeZeroes?: (
    offset: number,
    length: number,
    opts?: { mayUnmap?: boolean; fua?: boolean },
  ) => Promise<void>;
  declare readonly extents?: (offset: number, length: number) => Promise<Extent[]>;
  declare readonly resize?: (size: number) => Promise<void>;

  private capsFrom: BackstoreCaps | undefined;
  private capsCache: BackstoreCaps | undefined;

  constructor(readonly next: BackstoreOps) {
    const self = this as {
      -readonly [K in 'unmap' | 'writeZeroes' | 'extents' | 'resize']?: BackstoreOps[K];
    };
    if (next.unmap) self.unmap = (offset, length) => this.trim(offset, length);
    if (next.writeZeroes) self.writeZeroes = (offset, length, opts) => this.zeroes(offset, length, opts);
    if (next.extents) self.extents = (offset, length) => this.mapExtents(offset, length);
    if (next.resize) self.resize = (size) => this.resizeTo(size);
  }

  /**
   * The stack, outermost first: "error+delay+file". The kind is for people
   * (logs, `backstore list`, the dashboard): seeing that faults are being
   * injected matters more than the plugin name alone, which innermost(ops).kind
   * still gives. Nothing branches on kind.
   */
  get kind(): string {
    return `${this.type}+${this.next.kind}`;
  }

  get name(): string {
    return this.next.name;
  }

  /** Read live: a resize of the inner store shows through every layer. */
  get size(): number {
    return this.next.size;
  }

  get blockSize(): 512 | 4096 {
    return this.next.blockSize;
  }

  /** next's caps as narrowed by this filter, computed once per caps object of next. */
  get caps(): BackstoreCaps {
    const inner = this.next.caps;
    if (inner !== this.capsFrom || this.capsCache === undefined) {
      this.capsFrom = inner;
      this.capsCache = Object.freeze(onlyNarrowed(inner, this.narrowCaps({ ...inner })));
    }
    return this.capsCache;
  }

  async read(buf: Buffer, offset: number): Promise<void> {
    const wait = this.gate('read', offset, buf.length);
    if (wait) await wait;
    return this.next.read(buf, offset);
  }

  async write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    const wait = this.gate('write', offset, buf.length);
    if (wait) await wait;
    return this.next.write(buf, offset, opts);
  }

  async flush(): Promise<void> {
    const wait = this.gate('flush', 0, 0);
    if (wait) await wait;
    return this.next.flush();
  }

  close(): Promise<void> {
    return this.next.close();
  }

  /**
   * Called before every data operation. Flush has no range: it is gated as
   * (0, 0). Return undefined to forward now, a promise to forward once it
   * settles, or throw to fail the operation without forwarding it.
   */
  protected gate(_kind: FilterOpKind, _offset: number, _length: number): Promise<void> | undefined {
    return undefined;
  }

  /** Narrow a copy of next's caps (only ever turn abilities off). */
  protected narrowCaps(caps: BackstoreCaps): BackstoreCaps {
    return caps;
  }

  /** Behind `unmap` (present only when next.unmap is). */
  protected async trim(offset: number, length: number): Promise<void> {
    const wait = this.gate('trim', offset, length);
    if (wait) await wait;
    return this.next.unmap!(offset, length);
  }

  /** Behind `writeZeroes` (present only when next.writeZeroes is). */
  protected async zeroes(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    const wait = this.gate('zeroes', offset, length);
    if (wait) await wait;
    return this.next.writeZeroes!(offset, length, opts);
  }

  /** Behind `extents` (present only when next.extents is). */
  protected async mapExtents(offset: number, length: number): Promise<Extent[]> {
    const wait = this.gate('extents', offset, length);
    if (wait) await wait;
    return this.next.extents!(offset, length);
  }

  /** Behind `resize`: a management operation, not I/O; forwarded ungated. */
  protected resizeTo(size: number): Promise<void> {
    return this.next.resize!(size);
  }
}

/**
 * A filter may only turn abilities off: a boolean cap the inner store does
 * not have stays false whatever narrowCaps returned (nothing here emulates
 * FUA or zeroing; a filter that wants to must not be a BackstoreFilter).
 */
function onlyNarrowed(inner: BackstoreCaps, narrowed: BackstoreCaps): BackstoreCaps {
  const out: Record<string, unknown> = { ...narrowed };
  for (const [key, value] of Object.entries(inner)) {
    if (value === false) out[key] = false;
  }
  return out as unknown as BackstoreCaps;
}

/** The filters of a stack, outermost first (empty for a bare backstore). */
export function filtersOf(ops: BackstoreOps): BackstoreFilter[] {
  const out: BackstoreFilter[] = [];
  for (let cur = ops; cur instanceof BackstoreFilter; cur = cur.next) out.push(cur);
  return out;
}

/** The backstore under every filter of a stack (ops itself when unfiltered). */
export function innermost(ops: BackstoreOps): BackstoreOps {
  let cur = ops;
  while (cur instanceof BackstoreFilter) cur = cur.next;
  return cur;
}
