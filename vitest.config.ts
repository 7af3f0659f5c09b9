import { defineConfig } from 'vitest/config';

// Test tiers (STYLE.md §16): unit and fuzz run anywhere; integration starts
// live lunkit servers on free ports; interop drives real peers (libiscsi,
// tgtd, qemu-img) that ./scripts/test.sh installs.
export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      { extends: true, test: { name: 'interop', include: ['test/interop/**/*.test.ts'], testTimeout: 900_000, hookTimeout: 120_000, fileParallelism: false } },
      { extends: true, test: { name: 'fuzz', include: ['test/fuzz/**/*.test.ts'], testTimeout: 180_000 } },
    ],
  },
});
