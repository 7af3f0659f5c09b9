// The error filter: fault injection (nbdkit-error-filter, STYLE.md §17).
// Operations matching a rule fail with EIO, ENOSPC or EROFS before they
// reach the inner backstore, as a BackstoreIoError that already carries the
// sense reason the core reports (MEDIUM ERROR, SPACE ALLOCATION FAILED,
// WRITE PROTECTED). Rules combine kind, byte/LBA range, "after N" and a
// rate; they can be replaced and the filter toggled at run time (the
// daemon's control socket does this under load).

import { z } from 'zod';
import type { BackstoreOps } from '../../core/types.js';
import { BackstoreIoError, errnoCodeOf, errnoToSense, type BackstoreOp } from '../../core/errno.js';
import type { SenseReason } from '../../core/sense-reasons.js';
import type { LunkitErrorCode } from '../../protocols/errors.js';
import { BackstoreFilter, zeroCounts, type FilterOpKind } from './filter.js';
import { randomSource, type RandomSource } from './random.js';
import { ErrorRuleSchema, parseOrThrow, type ErrorRule, type ErrorRuleInput, type FilterConfigInput } from './schema.js';

export interface ErrorFilterOptions {
  /** Rules tried in order (validated like the config); default none (pass everything). */
  rules?: readonly ErrorRuleInput[];
  /** Default true. */
  enabled?: boolean;
  /** Seed of the random source behind rates. */
  seed?: number;
  /** A random source to use instead (tests); wins over seed. */
  random?: RandomSource;
}

export interface ErrorFilterStats {
  enabled: boolean;
  /** Operations failed by this filter, per kind. */
  injected: Record<FilterOpKind, number>;
  /** Operations forwarded to the inner backstore, per kind. */
  passed: Record<FilterOpKind, number>;
  /** Failures injected by each rule of the current set, in rule order. */
  rules: number[];
}

/** A rule with what the filter needs on the data path precomputed, and its counters. */
interface LiveRule {
  readonly rule: ErrorRule;
  readonly ops: ReadonlySet<FilterOpKind>;
  /** Byte range, with lba converted; undefined: the whole device. */
  readonly start: number;
  readonly end: number;
  readonly ranged: boolean;
  /** Matching operations seen per kind (for `after`). */
  readonly seen: Record<FilterOpKind, number>;
  injected: number;
}

/** The op name errnoToSense knows for each filter op kind. */
const SENSE_OP: Record<FilterOpKind, BackstoreOp> = {
  read: 'read',
  extents: 'read',
  write: 'write',
  zeroes: 'write',
  flush: 'flush',
  trim: 'unmap',
};

const RulesSchema = z.array(ErrorRuleSchema).max(64);

export class ErrorFilter extends BackstoreFilter {
  readonly type = 'error';
  /** False: every operation passes (and `after` counts nothing). Safe to flip at any time. */
  enabled: boolean;
  private live: LiveRule[] = [];
  private readonly random: RandomSource;
  private readonly seed: number | undefined;
  private injected = zeroCounts();
  private passed = zeroCounts();

  constructor(next: BackstoreOps, opts: ErrorFilterOptions = {}) {
    super(next);
    this.enabled = opts.enabled ?? true;
    this.seed = opts.seed;
    this.random = randomSource(opts.seed, opts.random);
    this.configure(opts.rules ?? []);
  }

  /** The current rules, normalized (bytes, defaults applied). */
  get rules(): readonly ErrorRule[] {
    return this.live.map((l) => l.rule);
  }

  /**
   * Replace the rule set. Validates first (ERR_INVALID_FILTER, nothing
   * changed on error); the new set applies to operations that arrive after
   * the call, `after` counts start again from zero. Operations already past
   * the filter (in flight in the inner store) are not affected.
   */
  configure(rules: readonly ErrorRuleInput[]): void {
    const parsed = parseOrThrow(RulesSchema, rules, 'error filter rules');
    const bs = this.next.blockSize;
    this.live = parsed.map((rule) => {
      const range = rule.range ?? (rule.lba ? { offset: rule.lba.start * bs, length: rule.lba.count * bs } : undefined);
      return {
        rule,
        ops: new Set(rule.ops),
        start: range?.offset ?? 0,
        end: range ? range.offset + range.length : Infinity,
        ranged: range !== undefined,
        seen: zeroCounts(),
        injected: 0,
      };
    });
  }

  stats(): ErrorFilterStats {
    return {
      enabled: this.enabled,
      injected: { ...this.injected },
      passed: { ...this.passed },
      rules: this.live.map((l) => l.injected),
    };
  }

  /** Zero the injected/passed counters (not the `after` counts of the rules). */
  resetStats(): void {
    this.injected = zeroCounts();
    this.passed = zeroCounts();
    for (const l of this.live) l.injected = 0;
  }

  /** The config that rebuilds this filter as it is now (for saving the live state). */
  toConfig(): FilterConfigInput {
    const cfg: FilterConfigInput = { type: 'error', enabled: this.enabled, rules: this.live.map((l) => ({ ...l.rule })) };
    if (this.seed !== undefined) cfg.seed = this.seed;
    return cfg;
  }

  protected override gate(kind: FilterOpKind, offset: number, length: number): undefined {
    if (this.enabled) {
      for (let i = 0; i < this.live.length; i++) {
        const l = this.live[i];
        if (!l.ops.has(kind)) continue;
        // Flush has no range: a ranged rule never fails it.
        if (l.ranged && (kind === 'flush' || offset >= l.end || offset + length <= l.start)) continue;
        if (l.seen[kind]++ < l.rule.after) continue;
        const rate = l.rule.rate;
        if (rate < 1 && !(rate > 0 && this.random() < rate)) continue;
        l.injected++;
        this.injected[kind]++;
        throw this.failure(l.rule, i, kind, offset, length);
      }
    }
    this.passed[kind]++;
    return undefined;
  }

  private failure(rule: ErrorRule, index: number, kind: FilterOpKind, offset: number, length: number): BackstoreIoError {
    const op = SENSE_OP[kind];
    const code: LunkitErrorCode = rule.error ?? (rule.sense ? (errnoCodeOf(rule.sense, op) as LunkitErrorCode) : 'EIO');
    const reason: SenseReason = rule.sense ?? errnoToSense({ code }, op);
    const where = kind === 'flush' ? '' : ` [${offset}, +${length})`;
    return new BackstoreIoError(code, `${this.name}: ${code} injected on ${kind}${where} by error rule ${index}`, reason);
  }
}
