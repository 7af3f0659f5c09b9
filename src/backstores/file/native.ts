// Typed wrapper around the lunkit_native addon (native/src/lunkit_native.c):
// fallocate and lseek on the libuv thread pool. The addon is optional: when
// it is not built, nativeFileOps() returns undefined and the file backstore
// falls back to writing zeroes and reporting everything as mapped.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeFileOps {
  /** fallocate(2); rejects with an Error whose code is the errno name. */
  fallocate(fd: number, mode: number, offset: number, length: number): Promise<void>;
  /** lseek(2); resolves with the new offset. */
  lseek(fd: number, offset: number, whence: number): Promise<number>;
  readonly FALLOC_FL_KEEP_SIZE: number;
  readonly FALLOC_FL_PUNCH_HOLE: number;
  readonly FALLOC_FL_ZERO_RANGE: number;
  readonly SEEK_SET: number;
  readonly SEEK_END: number;
  readonly SEEK_DATA: number;
  readonly SEEK_HOLE: number;
}

let cached: NativeFileOps | null | undefined;
let loadError: unknown;

function isNativeFileOps(v: unknown): v is NativeFileOps {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.fallocate === 'function' && typeof o.lseek === 'function' && typeof o.SEEK_DATA === 'number';
}

/** Candidate locations: the package root from src/ (tsx, vitest) and from dist/src/ (built). */
function candidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rel = path.join('native', 'build', 'Release', 'lunkit_native.node');
  return [path.resolve(here, '../../..', rel), path.resolve(here, '../../../..', rel)];
}

/** The addon, or undefined when it is not built (see nativeLoadError()). */
export function nativeFileOps(): NativeFileOps | undefined {
  if (cached !== undefined) return cached ?? undefined;
  const require = createRequire(import.meta.url);
  for (const file of candidates()) {
    try {
      const mod: unknown = require(file);
      if (isNativeFileOps(mod)) {
        cached = mod;
        return mod;
      }
    } catch (err) {
      loadError = err;
    }
  }
  cached = null;
  return undefined;
}

/** Why the addon could not be loaded (diagnostics). */
export function nativeLoadError(): unknown {
  return loadError;
}
