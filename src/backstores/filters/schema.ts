// Configuration of the filters: one zod 4 schema per filter type, and the
// list a backstore carries in the config (`"filters": [...]`, outermost
// first). The schemas turn human values ("5ms", "10%", "1M") into numbers
// once, at the edge; the filter classes take the parsed values.
//
//   { "type": "delay", "read": "5ms", "write": { "min": "1ms", "max": "20ms" } }
//   { "type": "error", "error": "EIO", "ops": ["read", "write"], "rate": 0.01,
//     "range": { "offset": 0, "length": "1M" }, "after": 100 }
//   { "type": "error", "enabled": false, "rules": [ { ... }, { ... } ] }
//   { "type": "readonly" }

import { z } from 'zod';
import { LunkitError } from '../../protocols/errors.js';
import { SenseReasons, type SenseReason } from '../../core/sense-reasons.js';
import { parseSize } from '../../util/size.js';
import { FILTER_OP_KINDS, type FilterOpKind } from './filter.js';

/** The code of every configuration error of a filter (docs/errors.md). */
export const ERR_INVALID_FILTER = 'ERR_INVALID_FILTER';

/** Longest delay a filter accepts: one hour. */
export const MAX_DELAY_MS = 3_600_000;

/** Most filters on one backstore. */
export const MAX_FILTERS = 16;

// ---------------------------------------------------------------------------
// Durations and rates

const DURATION_UNITS: Record<string, number> = { '': 1, us: 0.001, 'µs': 0.001, ms: 1, s: 1000, m: 60_000 };

/**
 * A duration in milliseconds: a number (ms) or a string "250us", "5ms",
 * "1.5s", "2m", "7" (ms). Throws ERR_INVALID_FILTER with the reason.
 */
export function parseDuration(input: string | number): number {
  let ms: number;
  if (typeof input === 'number') {
    ms = input;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|)\s*$/.exec(input);
    if (!m) throw new LunkitError(ERR_INVALID_FILTER, `"${input}" is not a duration (examples: 5ms, 200ms, 1s, 250us)`);
    ms = Number(m[1]) * DURATION_UNITS[m[2]];
  }
  if (!Number.isFinite(ms) || ms < 0) throw new LunkitError(ERR_INVALID_FILTER, `duration ${input} is not a time >= 0`);
  if (ms > MAX_DELAY_MS) throw new LunkitError(ERR_INVALID_FILTER, `duration ${input} is longer than ${MAX_DELAY_MS / 1000} s`);
  return ms;
}

/**
 * A probability in [0, 1]: a number 0.01, or a string "0.01", "1%", "1:100"
 * (nbdkit's forms). Throws ERR_INVALID_FILTER with the reason.
 */
export function parseRate(input: string | number): number {
  let rate: number;
  if (typeof input === 'number') {
    rate = input;
  } else {
    const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(input);
    const ratio = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(input);
    const plain = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(input);
    if (pct) rate = Number(pct[1]) / 100;
    else if (ratio) rate = Number(ratio[1]) / Number(ratio[2]);
    else if (plain) rate = Number(plain[1]);
    else throw new LunkitError(ERR_INVALID_FILTER, `"${input}" is not a rate (examples: 0.01, 1%, 1:100)`);
  }
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw new LunkitError(ERR_INVALID_FILTER, `rate ${input} is not a probability between 0 and 1`);
  }
  return rate;
}

/** A zod field that runs one of the parsers above and reports its message. */
function parsed<T>(parse: (v: string | number) => T) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
}

export const DurationSchema = parsed(parseDuration);
export const RateSchema = parsed(parseRate);
const SizeSchema = parsed(parseSize);

const OpKindSchema = z.enum(FILTER_OP_KINDS);

// ---------------------------------------------------------------------------
// error

/** The errno an injected failure carries; the core maps it to sense (errnoToSense). */
export const INJECTABLE_ERRORS = ['EIO', 'ENOSPC', 'EROFS'] as const;
export type InjectableError = (typeof INJECTABLE_ERRORS)[number];

/** What an error rule fails by default: every data operation except extents. */
export const DEFAULT_ERROR_OPS: readonly FilterOpKind[] = ['read', 'write', 'flush', 'trim', 'zeroes'];

const SenseReasonSchema = z.enum(Object.keys(SenseReasons) as [SenseReason, ...SenseReason[]]);

const ruleFields = {
  /** errno name; default EIO (or, with `sense`, the errno of that reason). */
  error: z.enum(INJECTABLE_ERRORS).optional(),
  /** Report this sense reason instead of the one `error` maps to (STYLE.md §17). */
  sense: SenseReasonSchema.optional(),
  /** Operation kinds the rule fails; default DEFAULT_ERROR_OPS. */
  ops: z.array(OpKindSchema).min(1, 'ops names at least one operation kind').optional(),
  /** Probability that an operation the rule matches fails; default 1. */
  rate: RateSchema.optional(),
  /** Byte range (sizes like "1M" allowed): only operations overlapping it fail. */
  range: z.strictObject({ offset: SizeSchema, length: SizeSchema }).optional(),
  /** The same in logical blocks of the backstore. */
  lba: z.strictObject({ start: z.number().int().min(0), count: z.number().int().min(1) }).optional(),
  /** Let the first N matching operations of each kind pass; fail the ones after. */
  after: z.number().int().min(0).optional(),
};

const RuleFieldsSchema = z.strictObject(ruleFields);
type RuleFields = z.output<typeof RuleFieldsSchema>;

/** One error rule, as the filter holds it. */
export interface ErrorRule {
  error?: InjectableError;
  sense?: SenseReason;
  ops: FilterOpKind[];
  rate: number;
  /** Bytes. */
  range?: { offset: number; length: number };
  /** Logical blocks (converted to bytes with the backstore's block size). */
  lba?: { start: number; count: number };
  after: number;
}

function normalizeRule(v: RuleFields, ctx: z.RefinementCtx): ErrorRule {
  if (v.range && v.lba) ctx.addIssue({ code: 'custom', message: 'give range (bytes) or lba (blocks), not both', path: ['lba'] });
  if (v.range && v.range.length === 0) ctx.addIssue({ code: 'custom', message: 'range.length must be > 0', path: ['range', 'length'] });
  const rule: ErrorRule = { ops: [...new Set(v.ops ?? DEFAULT_ERROR_OPS)], rate: v.rate ?? 1, after: v.after ?? 0 };
  if (v.error !== undefined) rule.error = v.error;
  if (v.sense !== undefined) rule.sense = v.sense;
  if (v.range) rule.range = { ...v.range };
  if (v.lba) rule.lba = { ...v.lba };
  return rule;
}

export const ErrorRuleSchema = RuleFieldsSchema.transform((v, ctx) => normalizeRule(v, ctx));
export type ErrorRuleInput = z.input<typeof ErrorRuleSchema>;

export const ErrorFilterSchema = z
  .strictObject({
    type: z.literal('error'),
    /** Start armed (default) or disarmed, to be enabled at run time. */
    enabled: z.boolean().default(true),
    /** Seed of the random source behind `rate` (tests); default Math.random. */
    seed: z.number().int().optional(),
    /** Several rules, tried in order; exclusive with the inline rule fields. */
    rules: z.array(ErrorRuleSchema).max(64).optional(),
    ...ruleFields,
  })
  .transform((v, ctx) => {
    const { type, enabled, seed, rules, ...inline } = v;
    if (rules && Object.values(inline).some((x) => x !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give either rules or one inline rule (error, ops, rate, range, lba, after), not both', path: ['rules'] });
    }
    const out: { type: 'error'; enabled: boolean; seed?: number; rules: ErrorRule[] } = { type, enabled, rules: rules ?? [normalizeRule(inline, ctx)] };
    if (seed !== undefined) out.seed = seed;
    return out;
  });

// ---------------------------------------------------------------------------
// delay

/** A delay as the filter holds it: fixed when min === max, else uniform in [min, max]. */
export interface DelayRange {
  min: number;
  max: number;
}

const durationInput = z.union([z.string(), z.number()]);

/** A duration, or { min, max } for a uniform random delay. Parsed in one step so errors keep their reason. */
export const DelaySchema = z
  .union([durationInput, z.strictObject({ min: durationInput, max: durationInput })])
  .transform((v, ctx): DelayRange => {
    const one = (d: string | number, path: PropertyKey[]): number => {
      try {
        return parseDuration(d);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message, path });
        return 0;
      }
    };
    if (typeof v !== 'object') {
      const ms = one(v, []);
      return { min: ms, max: ms };
    }
    const range = { min: one(v.min, ['min']), max: one(v.max, ['max']) };
    if (range.min > range.max) ctx.addIssue({ code: 'custom', message: 'min must not exceed max', path: ['max'] });
    return range;
  });
export type DelayInput = z.input<typeof DelaySchema>;

const delayFields = {
  read: DelaySchema.optional(),
  write: DelaySchema.optional(),
  flush: DelaySchema.optional(),
  trim: DelaySchema.optional(),
  zeroes: DelaySchema.optional(),
  extents: DelaySchema.optional(),
};

/** Per-kind delays; a kind not named is not delayed. */
export const DelaysSchema = z.strictObject(delayFields);
export type DelaysInput = z.input<typeof DelaysSchema>;
export type Delays = Partial<Record<FilterOpKind, DelayRange>>;

export const DelayFilterSchema = z
  .strictObject({
    type: z.literal('delay'),
    enabled: z.boolean().default(true),
    /** Seed of the random source behind min/max delays (tests). */
    seed: z.number().int().optional(),
    ...delayFields,
  })
  .transform((v) => {
    // The output keeps the input's shape ({ min, max } per kind), so a parsed
    // config parses again to itself (the daemon re-validates its saved copy).
    const { type, enabled, seed, ...perKind } = v;
    const out: { type: 'delay'; enabled: boolean; seed?: number } & Delays = { type, enabled };
    if (seed !== undefined) out.seed = seed;
    for (const kind of FILTER_OP_KINDS) if (perKind[kind]) out[kind] = perKind[kind];
    return out;
  });

/** The per-kind delays of a parsed delay filter config. */
export function delaysOf(config: Delays): Delays {
  const delays: Delays = {};
  for (const kind of FILTER_OP_KINDS) if (config[kind]) delays[kind] = config[kind];
  return delays;
}

// ---------------------------------------------------------------------------
// readonly

export const ReadonlyFilterSchema = z.strictObject({ type: z.literal('readonly') });

// ---------------------------------------------------------------------------

export const FilterConfigSchema = z.discriminatedUnion('type', [ErrorFilterSchema, DelayFilterSchema, ReadonlyFilterSchema]);
/** A filter as written in the config or sent over the control socket. */
export type FilterConfigInput = z.input<typeof FilterConfigSchema>;
/** A filter config after validation (numbers, defaults applied). */
export type FilterConfig = z.output<typeof FilterConfigSchema>;
export type FilterType = FilterConfig['type'];

/** A backstore's `filters` list, outermost (nearest the core) first. */
export const FiltersSchema = z.array(FilterConfigSchema).max(MAX_FILTERS, `at most ${MAX_FILTERS} filters on one backstore`);

/** Parse with a schema or throw ERR_INVALID_FILTER listing every problem with its path. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new LunkitError(ERR_INVALID_FILTER, `invalid ${what}:\n${z.prettifyError(r.error)}`, { cause: r.error });
  return r.data;
}
