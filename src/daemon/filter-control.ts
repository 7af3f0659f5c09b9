// Control methods for the live filters of a backstore (docs/control-protocol.md
// "Filters"): read their state and statistics, switch an error or delay
// filter on and off, replace its rules, while I/O runs. These change the
// running filter only, never the configuration document: a test breaking a
// backstore under load does not want the break saved. To change the stack
// itself (add, remove, reorder filters), change the backstore's `filters`
// in the configuration.

import type { BackstoreOps } from '../core/types.js';
import { DelayFilter, ErrorFilter, filtersOf, type BackstoreFilter } from '../backstores/filters/index.js';
import { isLunkitError } from '../protocols/errors.js';
import { ControlError, jsonPath } from './errors.js';

/** What the daemon needs to find a backstore's live stack. */
export interface FilterHost {
  backstoreOps(name: string): BackstoreOps | undefined;
}

export interface FilterState {
  /** Position in the stack, 0 = outermost (nearest the core). */
  index: number;
  type: string;
  enabled?: boolean;
  stats?: unknown;
  /** The filter as a config entry, run-time changes included. */
  config?: unknown;
}

function describe(f: BackstoreFilter, index: number): FilterState {
  if (f instanceof ErrorFilter) return { index, type: 'error', enabled: f.enabled, stats: f.stats(), config: f.toConfig() };
  if (f instanceof DelayFilter) return { index, type: 'delay', enabled: f.enabled, stats: f.stats(), config: f.toConfig() };
  return { index, type: f.kind.split('+')[0] };
}

function stackOf(host: FilterHost, params: Record<string, unknown>): { name: string; filters: BackstoreFilter[] } {
  const name = params.backstore;
  if (typeof name !== 'string' || name.length === 0) throw new ControlError('ERR_INVALID_PARAMS', 'params.backstore: the backstore name');
  const ops = host.backstoreOps(name);
  if (!ops) throw new ControlError('ERR_NOT_FOUND', `no backstore "${name}"`, { path: jsonPath('backstores', name) });
  return { name, filters: filtersOf(ops) };
}

/** backstore.filter.get { backstore }: every filter of the stack, outermost first. */
export function getFilters(host: FilterHost, params: Record<string, unknown>): { backstore: string; filters: FilterState[] } {
  const { name, filters } = stackOf(host, params);
  return { backstore: name, filters: filters.map(describe) };
}

/**
 * backstore.filter.set { backstore, type: "error"|"delay", nth?, enabled?,
 * rules? (error), delays? (delay), resetStats? }: changes the nth filter of
 * that type (0 = the outermost one). Everything is checked before anything
 * changes.
 */
export function setFilter(host: FilterHost, params: Record<string, unknown>): { backstore: string; filter: FilterState } {
  const { name, filters } = stackOf(host, params);
  const type = params.type;
  if (type !== 'error' && type !== 'delay') throw new ControlError('ERR_INVALID_PARAMS', 'params.type: "error" or "delay" (other filters have nothing to change at run time)');
  const nth = params.nth ?? 0;
  if (typeof nth !== 'number' || !Number.isInteger(nth) || nth < 0) throw new ControlError('ERR_INVALID_PARAMS', 'params.nth: a whole number >= 0');
  if (params.enabled !== undefined && typeof params.enabled !== 'boolean') throw new ControlError('ERR_INVALID_PARAMS', 'params.enabled: true or false');
  const matching = filters.map((f, index) => ({ f, index })).filter(({ f }) => (type === 'error' ? f instanceof ErrorFilter : f instanceof DelayFilter));
  const hit = matching[nth];
  if (!hit) {
    throw new ControlError('ERR_NOT_FOUND', `backstore "${name}" has ${matching.length === 0 ? 'no' : `only ${matching.length}`} ${type} filter${matching.length === 1 ? '' : 's'}`, {
      path: jsonPath('backstores', name, 'filters'),
    });
  }
  try {
    if (hit.f instanceof ErrorFilter) {
      if (params.delays !== undefined) throw new ControlError('ERR_INVALID_PARAMS', 'params.delays: only for a delay filter');
      if (params.rules !== undefined) {
        if (!Array.isArray(params.rules)) throw new ControlError('ERR_INVALID_PARAMS', 'params.rules: a list of error rules');
        hit.f.configure(params.rules as Parameters<ErrorFilter['configure']>[0]);
      }
    } else if (hit.f instanceof DelayFilter) {
      if (params.rules !== undefined) throw new ControlError('ERR_INVALID_PARAMS', 'params.rules: only for an error filter');
      if (params.delays !== undefined) hit.f.configure(params.delays as Parameters<DelayFilter['configure']>[0]);
    }
  } catch (e) {
    if (isLunkitError(e, 'ERR_INVALID_FILTER')) throw new ControlError('ERR_INVALID_PARAMS', e.message);
    throw e;
  }
  const f = hit.f as ErrorFilter | DelayFilter;
  if (typeof params.enabled === 'boolean') f.enabled = params.enabled;
  if (params.resetStats === true && f instanceof ErrorFilter) f.resetStats();
  return { backstore: name, filter: describe(hit.f, hit.index) };
}
