// The delay filter: latency per operation kind (nbdkit-delay-filter), fixed
// or uniformly random between min and max. Each operation waits on its own
// timer, so concurrent operations overlap their delays (a queue depth of 32
// with 5 ms reads still completes about 32 reads per 5 ms); the filter adds
// latency, not serialization. The wait happens before the operation is
// forwarded.

import { performance } from 'node:perf_hooks';
import type { BackstoreOps } from '../../core/types.js';
import { BackstoreIoError, errnoToSense } from '../../core/errno.js';
import { BackstoreFilter, FILTER_OP_KINDS, zeroCounts, type FilterOpKind } from './filter.js';
import { randomSource, type RandomSource } from './random.js';
import { DelaysSchema, parseOrThrow, type Delays, type DelaysInput, type FilterConfigInput } from './schema.js';

export interface DelayFilterOptions {
  /** Per-kind delays, validated like the config ("5ms", { min, max }, numbers in ms). */
  delays?: DelaysInput;
  enabled?: boolean;
  /** Seed of the random source behind min/max delays. */
  seed?: number;
  random?: RandomSource;
}

export interface DelayFilterStats {
  enabled: boolean;
  /** Operations that waited, per kind. */
  delayed: Record<FilterOpKind, number>;
  /** Operations waiting right now. */
  pending: number;
}

interface Sleeper {
  timer: NodeJS.Timeout;
  reject: (err: Error) => void;
}

export class DelayFilter extends BackstoreFilter {
  readonly type = 'delay';
  /** False: no operation waits. Operations already waiting keep waiting. */
  enabled: boolean;
  private table: Delays = {};
  private readonly random: RandomSource;
  private readonly seed: number | undefined;
  private readonly sleeping = new Set<Sleeper>();
  private delayed = zeroCounts();

  constructor(next: BackstoreOps, opts: DelayFilterOptions = {}) {
    super(next);
    this.enabled = opts.enabled ?? true;
    this.seed = opts.seed;
    this.random = randomSource(opts.seed, opts.random);
    this.configure(opts.delays ?? {});
  }

  /** Current delays in ms per kind (kinds not listed are not delayed). */
  get delays(): Readonly<Delays> {
    return this.table;
  }

  /** Replace the delays (validated; ERR_INVALID_FILTER leaves them unchanged). Applies to later operations. */
  configure(delays: DelaysInput): void {
    const parsed = parseOrThrow(DelaysSchema, delays, 'delay filter delays');
    const table: Delays = {};
    for (const kind of FILTER_OP_KINDS) {
      const d = parsed[kind];
      if (d && d.max > 0) table[kind] = d;
    }
    this.table = table;
  }

  stats(): DelayFilterStats {
    return { enabled: this.enabled, delayed: { ...this.delayed }, pending: this.sleeping.size };
  }

  toConfig(): FilterConfigInput {
    const cfg: FilterConfigInput = { type: 'delay', enabled: this.enabled };
    for (const kind of FILTER_OP_KINDS) {
      const d = this.table[kind];
      if (d) cfg[kind] = d.min === d.max ? d.min : { min: d.min, max: d.max };
    }
    if (this.seed !== undefined) cfg.seed = this.seed;
    return cfg;
  }

  /**
   * Operations still waiting fail with ESHUTDOWN (they never reach the
   * inner store), then the inner store closes. Nothing waits out a delay.
   */
  override close(): Promise<void> {
    const err = new BackstoreIoError('ESHUTDOWN', `${this.name}: closed while an operation was delayed`, errnoToSense({ code: 'ESHUTDOWN' }, 'read'));
    for (const s of this.sleeping) {
      clearTimeout(s.timer);
      s.reject(err);
    }
    this.sleeping.clear();
    return super.close();
  }

  protected override gate(kind: FilterOpKind): Promise<void> | undefined {
    if (!this.enabled) return undefined;
    const d = this.table[kind];
    if (!d) return undefined;
    const ms = d.min === d.max ? d.min : d.min + (d.max - d.min) * this.random();
    if (ms <= 0) return undefined;
    this.delayed[kind]++;
    return this.sleep(ms);
  }

  /**
   * Wait at least ms milliseconds of wall time. Node timers can fire up to a
   * millisecond early against performance.now() (the loop clock is
   * truncated to whole ms); a short timer makes up the difference.
   */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const start = performance.now();
      const s: Sleeper = { timer: undefined as unknown as NodeJS.Timeout, reject };
      const fire = (): void => {
        const left = ms - (performance.now() - start);
        if (left > 0) {
          s.timer = setTimeout(fire, Math.ceil(left));
          return;
        }
        this.sleeping.delete(s);
        resolve();
      };
      s.timer = setTimeout(fire, Math.ceil(ms));
      this.sleeping.add(s);
    });
  }
}
