// glibc malloc settings for a process that serves FUSE files (docs/fuse.md
// "Performance": measured). Each 128 KiB FUSE read makes the core allocate a
// fresh 128 KiB data-in buffer (and the NBD client 64 KiB socket chunks).
// With glibc's defaults such a buffer comes from mmap (threshold 128 KiB),
// or from heap pages that were given back to the kernel after the previous
// GC (trim threshold): either way every request touches 32 never-mapped
// pages, and on this machine class (a paravirtualised VM) a page fault costs
// about 15 us, so ~500 us of a request went to faults. Keeping such buffers
// on the heap (mmap_threshold) and the freed heap mapped (trim_threshold)
// lets the allocator hand back pages that are already mapped: 40 MB/s ->
// 900 MB/s for 1 MiB reads over a null backstore. glibc reads
// GLIBC_TUNABLES once at start, so it must be in the environment of the
// process that hosts the FuseFabric when it is spawned.

/** Allocations up to 4 MiB stay on the heap (FUSE requests are at most 128 KiB). */
const MMAP_THRESHOLD = 4 * 1024 * 1024;
/** Keep up to 128 MiB of freed heap mapped instead of returning it after each GC. */
const TRIM_THRESHOLD = 128 * 1024 * 1024;

/** The tunables lunkit wants, in GLIBC_TUNABLES syntax. */
export const FUSE_MALLOC_TUNABLES: ReadonlyArray<readonly [string, string]> = [
  ['glibc.malloc.mmap_threshold', String(MMAP_THRESHOLD)],
  ['glibc.malloc.trim_threshold', String(TRIM_THRESHOLD)],
];

/**
 * A GLIBC_TUNABLES value with lunkit's malloc settings added to `current`
 * (the user's own value wins for any name it already sets).
 */
export function withFuseMallocTunables(current: string | undefined): string {
  const parts = (current ?? '').split(':').filter((p) => p.length > 0);
  const named = new Set(parts.map((p) => p.split('=')[0]));
  for (const [name, value] of FUSE_MALLOC_TUNABLES) if (!named.has(name)) parts.push(`${name}=${value}`);
  return parts.join(':');
}

/** Set by a spawner that added the settings (attach.ts), because glibc's own copy of the variable cannot be trusted (below). */
export const FUSE_MALLOC_MARKER = 'LUNKIT_FUSE_MALLOC';

/**
 * Whether this process was started with the malloc settings. glibc 2.36
 * applies every tunable but leaves only the first one in the environment the
 * process then sees (checked with `ld.so --list-tunables` against
 * /proc/PID/environ), so this trusts the spawner's marker, or any one of the
 * names (a user who set them: the first survives).
 */
export function hasFuseMallocTunables(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[FUSE_MALLOC_MARKER] === 'tuned') return true;
  const names = new Set((env.GLIBC_TUNABLES ?? '').split(':').map((p) => p.split('=')[0]));
  return FUSE_MALLOC_TUNABLES.some(([name]) => names.has(name));
}
