// Filters: nbdkit-style middleware between the core and a backstore
// (README.md in this folder). applyFilters() stacks a backstore's `filters`
// list, filterOf() finds a live filter in a stack for the control socket.

import type { BackstoreOps } from '../../core/types.js';
import { DelayFilter } from './delay.js';
import { ErrorFilter } from './error.js';
import { BackstoreFilter, filtersOf } from './filter.js';
import { ReadonlyFilter } from './readonly.js';
import type { RandomSource } from './random.js';
import { delaysOf, FilterConfigSchema, parseOrThrow, type FilterConfig, type FilterConfigInput, type FilterType } from './schema.js';

/** Builds a filter around `next`: for filters that have no config type (tests, a future `stats`). */
export type FilterFactory = (next: BackstoreOps) => BackstoreOps;

export interface ApplyFiltersOptions {
  /** Random source for every error/delay filter of the stack (tests); wins over their seeds. */
  random?: RandomSource;
}

/** The filter class of each config type. */
export interface FilterByType {
  error: ErrorFilter;
  delay: DelayFilter;
  readonly: ReadonlyFilter;
}

/** One filter around `next` from a validated config. */
export function createFilter(next: BackstoreOps, config: FilterConfig, opts: ApplyFiltersOptions = {}): BackstoreFilter {
  switch (config.type) {
    case 'error':
      return new ErrorFilter(next, { rules: config.rules, enabled: config.enabled, seed: config.seed, random: opts.random });
    case 'delay':
      return new DelayFilter(next, { delays: delaysOf(config), enabled: config.enabled, seed: config.seed, random: opts.random });
    case 'readonly':
      return new ReadonlyFilter(next);
  }
}

/**
 * Stack filters on a backstore. The first entry is the outermost (nearest
 * the core): calls go through the list in order on the way in and in
 * reverse on the way out, as with nbdkit's `--filter=A --filter=B plugin`.
 * Every config is validated before any filter is built (ERR_INVALID_FILTER,
 * naming `filters[i]`). An empty list returns the backstore itself.
 * Closing the result closes every layer and then the backstore.
 */
export function applyFilters(
  backstore: BackstoreOps,
  filters: ReadonlyArray<FilterConfigInput | FilterFactory>,
  opts: ApplyFiltersOptions = {},
): BackstoreOps {
  const built: Array<FilterConfig | FilterFactory> = filters.map((f, i) =>
    typeof f === 'function' ? f : parseOrThrow(FilterConfigSchema, f, `filters[${i}]`),
  );
  let ops = backstore;
  for (let i = built.length - 1; i >= 0; i--) {
    const f = built[i];
    ops = typeof f === 'function' ? f(ops) : createFilter(ops, f, opts);
  }
  return ops;
}

/**
 * The outermost live filter of a type in a stack, or undefined; `nth`
 * picks a later one when a stack holds several of that type (0 = outermost).
 */
export function filterOf<T extends FilterType>(ops: BackstoreOps, type: T, nth = 0): FilterByType[T] | undefined {
  const found = filtersOf(ops).filter((f) => f.type === type);
  return found[nth] as FilterByType[T] | undefined;
}

/** The config list that rebuilds a stack's filters as they are now (live rule changes included). */
export function filterConfigsOf(ops: BackstoreOps): FilterConfigInput[] {
  const out: FilterConfigInput[] = [];
  for (const f of filtersOf(ops)) {
    if (f instanceof ErrorFilter || f instanceof DelayFilter || f instanceof ReadonlyFilter) out.push(f.toConfig());
  }
  return out;
}

export { BackstoreFilter, FILTER_OP_KINDS, filtersOf, innermost, type FilterOpKind } from './filter.js';
export { ErrorFilter, type ErrorFilterOptions, type ErrorFilterStats } from './error.js';
export { DelayFilter, type DelayFilterOptions, type DelayFilterStats } from './delay.js';
export { ReadonlyFilter } from './readonly.js';
export { seededRandom, type RandomSource } from './random.js';
export {
  DEFAULT_ERROR_OPS,
  DelayFilterSchema,
  DelaySchema,
  DelaysSchema,
  DurationSchema,
  ERR_INVALID_FILTER,
  ErrorFilterSchema,
  ErrorRuleSchema,
  FilterConfigSchema,
  FiltersSchema,
  INJECTABLE_ERRORS,
  MAX_DELAY_MS,
  MAX_FILTERS,
  RateSchema,
  ReadonlyFilterSchema,
  parseDuration,
  parseRate,
  type DelayInput,
  type DelayRange,
  type Delays,
  type DelaysInput,
  type ErrorRule,
  type ErrorRuleInput,
  type FilterConfig,
  type FilterConfigInput,
  type FilterType,
  type InjectableError,
} from './schema.js';
