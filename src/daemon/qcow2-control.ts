// Control methods for a running qcow2 backstore (docs/control-protocol.md
// "qcow2 backstores"): backstore.reset, backstore.snapshot, backstore.commit.
// Each works on the live image inside the backstore (LiveQcow2, under any
// filters), holding its I/O for the swap, so the LU and its sessions stay.
// reset queues MEDIUM MAY HAVE CHANGED on the LU; snapshot changes the
// backstore's `path` in the configuration document (the caller records it
// without reopening anything).

import { realpathSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { ScsiCore } from '../core/engine.js';
import type { ScsiDeviceHandle } from '../core/types.js';
import { innermost } from '../backstores/filters/index.js';
import type { LiveQcow2 } from '../backstores/qcow2/live.js';
import type { Progress } from '../backstores/descriptor.js';
import { isLunkitError } from '../protocols/errors.js';
import type { ConfigDoc } from './config-doc.js';
import { ControlError, jsonPath } from './errors.js';
import type { OpenBackstore } from './runtime-objects.js';

export const QCOW2_METHODS = ['backstore.reset', 'backstore.snapshot', 'backstore.commit'] as const;
export type Qcow2Method = (typeof QCOW2_METHODS)[number];

export function isQcow2Method(method: string): method is Qcow2Method {
  return (QCOW2_METHODS as readonly string[]).includes(method);
}

/** What the daemon lends these methods. */
export interface Qcow2Host {
  core: ScsiCore;
  backstores: ReadonlyMap<string, OpenBackstore>;
  /** The configuration document (a private copy the op may edit). */
  doc: ConfigDoc;
  progress(p: Progress): void;
}

export interface Qcow2OpResult {
  result: Record<string, unknown>;
  /** The changed document, when the op changed the configuration (snapshot). */
  doc?: ConfigDoc;
}

function realOrSame(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

async function liveOf(host: Qcow2Host, params: Record<string, unknown>, verb: string): Promise<{ name: string; live: LiveQcow2; device: ScsiDeviceHandle }> {
  const name = params.name;
  if (typeof name !== 'string' || name === '') throw new ControlError('ERR_INVALID_PARAMS', 'params.name: the backstore name');
  const bs = host.backstores.get(name);
  if (!bs) throw new ControlError('ERR_NOT_FOUND', `no backstore named "${name}"`, { path: jsonPath('backstores', name) });
  const { LiveQcow2: Live } = await import('../backstores/qcow2/live.js');
  const live = innermost(bs.ops);
  if (bs.spec.type !== 'qcow2' || !(live instanceof Live)) {
    throw new ControlError('ERR_INVALID_PARAMS', `backstore "${name}" is a ${bs.spec.type} backstore; ${verb} works on qcow2 backstores only`, { path: jsonPath('backstores', name, 'type') });
  }
  if (!live.caps.canWrite) throw new ControlError('ERR_INVALID_PARAMS', `backstore "${name}" is read-only; ${verb} changes its image`, { path: jsonPath('backstores', name, 'readOnly') });
  return { name, live, device: bs.device };
}

function needBacking(name: string, live: LiveQcow2, verb: string, what: string): void {
  if (live.image.backingChain.length === 0) {
    throw new ControlError('ERR_INVALID_PARAMS', `backstore "${name}" (${live.image.path}) has no backing file: ${verb} ${what}`, { path: jsonPath('backstores', name) });
  }
}

/** Other backstores reading or writing `file` (commit would change their data under their caches). */
function usersOf(host: Qcow2Host, except: string, file: string, Live: typeof LiveQcow2): string[] {
  const want = realOrSame(file);
  const out: string[] = [];
  for (const [name, bs] of host.backstores) {
    if (name === except) continue;
    const inner = innermost(bs.ops);
    const paths = inner instanceof Live ? [inner.image.path, ...inner.image.backingChain.map((l) => l.path)] : [(bs.spec as { path?: unknown }).path];
    if (paths.some((p) => typeof p === 'string' && realOrSame(p) === want)) out.push(name);
  }
  return out;
}

/** An error of the image operation as the control protocol's. */
function asControlError(err: unknown, what: string): ControlError {
  if (err instanceof ControlError) return err;
  if (isLunkitError(err, 'ERR_EXISTS')) return new ControlError('ERR_EXISTS', err.message, { cause: err });
  return new ControlError('ERR_APPLY_FAILED', `${what}: ${(err as Error).message}`, { cause: err });
}

export async function runQcow2Method(host: Qcow2Host, method: Qcow2Method, params: Record<string, unknown>): Promise<Qcow2OpResult> {
  switch (method) {
    case 'backstore.reset': {
      const { name, live, device } = await liveOf(host, params, 'reset');
      needBacking(name, live, 'reset', 'drops the top layer back to its backing file, and this image has none');
      const res = await live.reset().catch((e: unknown) => {
        throw asControlError(e, `resetting backstore "${name}"`);
      });
      host.core.mediumChanged(device);
      return { result: { name, path: res.path, backing: res.backing } };
    }
    case 'backstore.snapshot': {
      const { name, live } = await liveOf(host, params, 'snapshot');
      const to = params.to;
      if (typeof to !== 'string' || !isAbsolute(to)) throw new ControlError('ERR_INVALID_PARAMS', 'params.to: the absolute path of the new top image');
      const res = await live.snapshot(to).catch((e: unknown) => {
        throw asControlError(e, `snapshot of backstore "${name}"`);
      });
      const doc = host.doc;
      const bs = doc.backstores[name] as Record<string, unknown>;
      bs.path = res.path;
      bs.backing = res.backing;
      bs.backingFormat = 'qcow2';
      return { result: { name, path: res.path, backing: res.backing }, doc };
    }
    case 'backstore.commit': {
      const { name, live } = await liveOf(host, params, 'commit');
      needBacking(name, live, 'commit', 'folds the top layer into its backing file, and this image has none');
      const { LiveQcow2: Live } = await import('../backstores/qcow2/live.js');
      const target = live.image.backingChain[0].path;
      const users = usersOf(host, name, target, Live);
      if (users.length > 0) {
        throw new ControlError('ERR_IN_USE', `backstore${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')} also use${users.length > 1 ? '' : 's'} ${target}; commit would change their data under them`, {
          path: jsonPath('backstores', users[0]),
        });
      }
      const res = await live.commit((p) => host.progress(p)).catch((e: unknown) => {
        throw asControlError(e, `committing backstore "${name}"`);
      });
      return { result: { name, path: live.image.path, backing: res.backing, backingFormat: res.format, bytes: res.bytes } };
    }
  }
}
