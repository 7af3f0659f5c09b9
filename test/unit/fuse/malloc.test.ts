import { describe, expect, it } from 'vitest';
import { hasFuseMallocTunables, withFuseMallocTunables } from '../../../src/fabrics/fuse/malloc.js';

describe('FUSE malloc tunables', () => {
  it('adds both settings to an empty environment', () => {
    expect(withFuseMallocTunables(undefined)).toBe('glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728');
    expect(withFuseMallocTunables('')).toBe('glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728');
  });

  it('keeps the user\'s other tunables and the user\'s own value for a name it sets', () => {
    expect(withFuseMallocTunables('glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1048576')).toBe(
      'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1048576:glibc.malloc.mmap_threshold=4194304',
    );
  });

  it('recognises a tuned process by the spawner\'s marker or by a surviving name (glibc keeps only the first)', () => {
    expect(hasFuseMallocTunables({ LUNKIT_FUSE_MALLOC: 'tuned', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toBe(true);
    expect(hasFuseMallocTunables({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4194304' })).toBe(true);
    expect(hasFuseMallocTunables({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toBe(false);
    expect(hasFuseMallocTunables({ LUNKIT_FUSE_MALLOC: 'default' })).toBe(false);
    expect(hasFuseMallocTunables({})).toBe(false);
  });
});
