// Control methods for a LU's latched flush failure (core/io-guard.ts,
// docs/control-protocol.md "Backstores"): after a flush (fdatasync) failed,
// every later flush and FUA write of the LU fails with MEDIUM ERROR until an
// operator, having checked or restored the data, clears the latch. Clearing
// is deliberately a separate, explicit step: the daemon cannot know whether
// the writes the kernel dropped mattered.

import type { MediumErrorState } from '../core/io-guard.js';
import type { ScsiCore } from '../core/engine.js';
import type { ScsiDeviceHandle } from '../core/types.js';
import { ControlError, jsonPath } from './errors.js';

export const MEDIUM_ERROR_METHODS = ['backstore.errors', 'backstore.clearError'] as const;

/** What the daemon needs: the core and the device behind each backstore name. */
export interface MediumErrorHost {
  core(): ScsiCore;
  device(name: string): ScsiDeviceHandle | undefined;
  names(): Iterable<string>;
}

export function isMediumErrorMethod(method: string): boolean {
  return (MEDIUM_ERROR_METHODS as readonly string[]).includes(method);
}

function nameParam(params: Record<string, unknown>): string {
  const name = params.name;
  if (typeof name !== 'string' || name.length === 0) throw new ControlError('ERR_INVALID_PARAMS', 'params.name: the backstore name');
  return name;
}

/**
 * backstore.errors {}: { errors: { NAME: state } } for every latched LU;
 * backstore.clearError { name }: { name, cleared: state | null }.
 */
export function runMediumErrorMethod(host: MediumErrorHost, method: string, params: Record<string, unknown>): unknown {
  if (method === 'backstore.errors') {
    const errors: Record<string, MediumErrorState> = {};
    for (const name of host.names()) {
      const dev = host.device(name);
      const state = dev ? host.core().mediumError(dev) : undefined;
      if (state) errors[name] = { ...state };
    }
    return { errors };
  }
  const name = nameParam(params);
  const dev = host.device(name);
  if (!dev) throw new ControlError('ERR_NOT_FOUND', `no backstore "${name}"`, { path: jsonPath('backstores', name) });
  const cleared = host.core().clearMediumError(dev);
  return { name, cleared: cleared ?? null };
}
