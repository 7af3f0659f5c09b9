// Caps and methods agree (STYLE.md §3): a backstore offers the optional
// methods of BackstoreOps (unmap, writeZeroes, extents) exactly when its caps
// promise them. The core decides from caps alone (core/block-ops.ts checks
// the caps => method direction when a device is created); the other
// direction keeps a filter or a tool that looks for a method from finding one
// the caps deny. test/unit/backstores/registry.test.ts checks both directions
// for every registered type.

import type { BackstoreCaps, BackstoreOps } from '../core/types.js';

/** The optional methods and the cap that promises each. */
export const CAPPED_METHODS = [
  ['unmap', 'canUnmap'],
  ['writeZeroes', 'canWriteZeroes'],
  ['extents', 'canExtents'],
] as const satisfies ReadonlyArray<readonly [keyof BackstoreOps, keyof BackstoreCaps]>;

/**
 * For a class whose caps are known only once it is open (a read-only file
 * has no unmap): shadows each optional method whose cap is off with an own
 * `undefined`, so the instance offers exactly what its caps promise. Call it
 * at the end of the constructor, after `caps` is set.
 */
export function hideUncappedMethods(store: BackstoreOps): void {
  for (const [method, cap] of CAPPED_METHODS) {
    if (!store.caps[cap]) Object.defineProperty(store, method, { value: undefined, configurable: true, enumerable: false, writable: false });
  }
}

/** "canUnmap but no unmap()"-style disagreements of an open backstore (empty when they agree). */
export function capsDisagreements(store: BackstoreOps): string[] {
  const out: string[] = [];
  for (const [method, cap] of CAPPED_METHODS) {
    const has = typeof store[method] === 'function';
    if (store.caps[cap] && !has) out.push(`${cap} but no ${method}()`);
    if (!store.caps[cap] && has) out.push(`${method}() without ${cap}`);
  }
  return out;
}
