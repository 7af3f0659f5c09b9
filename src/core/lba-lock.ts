// Exclusive LBA range locks.
//
// COMPARE AND WRITE must be atomic against every other writer (SBC-3 §5.2:
// "the device server shall ... not allow any other command to modify the
// logical blocks" between the read/compare and the write). Every write path
// takes the lock for its range; COMPARE AND WRITE holds it across its read,
// compare and write.
//
// Fairness: a request is granted only when it overlaps neither a held range
// nor an earlier waiting request, so an overlapping writer can never starve
// a waiter that queued before it (FIFO among overlapping requests), while
// disjoint ranges proceed in parallel. The uncontended path allocates one
// small record and one resolved promise.

interface Range {
  start: bigint;
  /** Exclusive end. */
  end: bigint;
}

interface Waiter extends Range {
  grant: (release: () => void) => void;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

export class LbaRangeLock {
  private readonly held = new Set<Range>();
  private waiters: Waiter[] = [];

  /** Number of ranges currently held (diagnostics and tests). */
  get heldCount(): number {
    return this.held.size;
  }

  /** Number of requests waiting (diagnostics and tests). */
  get waitingCount(): number {
    return this.waiters.length;
  }

  /**
   * Lock [lba, lba + blocks). Resolves with a release function; calling it
   * more than once is harmless. A zero-length range conflicts with nothing.
   */
  lock(lba: bigint, blocks: number): Promise<() => void> {
    const range: Range = { start: lba, end: lba + BigInt(blocks) };
    if (blocks <= 0) return Promise.resolve(noop);
    if (this.canGrant(range, this.waiters.length)) {
      return Promise.resolve(this.take(range));
    }
    return new Promise((resolve) => {
      this.waiters.push({ ...range, grant: resolve });
    });
  }

  /** true when range overlaps no held range and none of the first `before` waiters. */
  private canGrant(range: Range, before: number): boolean {
    for (const h of this.held) if (overlaps(h, range)) return false;
    for (let i = 0; i < before; i++) if (overlaps(this.waiters[i], range)) return false;
    return true;
  }

  private take(range: Range): () => void {
    this.held.add(range);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(range);
      this.wake();
    };
  }

  /** Grant, in queue order, every waiter that now conflicts with nothing before it. */
  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      let blocked = false;
      for (const h of this.held) if (overlaps(h, w)) { blocked = true; break; }
      if (!blocked) for (const s of still) if (overlaps(s, w)) { blocked = true; break; }
      if (blocked) still.push(w);
      else w.grant(this.take({ start: w.start, end: w.end }));
    }
    this.waiters = still;
  }
}

function noop(): void {}
