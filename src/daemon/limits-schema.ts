// The `limits` section of the configuration (docs/security.md): budgets on what
// remote peers can make the daemon hold. Every field is optional; an absent
// one keeps the fabric's default (fabrics/iscsi/limits.ts, fabrics/nbd/limits.ts),
// so a saved configuration only carries what the operator chose.

import { z } from 'zod';

const count = (max: number) => z.number().int().min(1).max(max).optional();
const bytes = (min: number, max: number) => z.number().int().min(min).max(max).optional();
const seconds = (min: number, max: number) => z.number().int().min(min).max(max).optional();

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const IscsiLimitsSchema = z.strictObject({
  maxConnections: count(1_000_000),
  maxConnectionsPerAddress: count(1_000_000),
  maxSessionsPerInitiator: count(65_535),
  sendHighWaterBytes: bytes(64 * KiB, 1 * GiB),
  sessionWriteBytes: bytes(1 * MiB, 64 * GiB),
  totalWriteBytes: bytes(1 * MiB, 1024 * GiB),
  maxImmediateCommands: count(65_535),
  retainedBytesPerConnection: bytes(1 * MiB, 64 * GiB),
  maxDefaultTime2Wait: seconds(0, 3600),
  maxDefaultTime2Retain: seconds(0, 3600),
  discoveryIdleTimeout: seconds(0, 86_400),
  authFailureDelayMs: z.number().int().min(0).max(600_000).optional(),
  authFailureMaxDelayMs: z.number().int().min(0).max(3_600_000).optional(),
});

export const NbdLimitsSchema = z.strictObject({
  maxConnections: count(1_000_000),
  maxConnectionsPerAddress: count(1_000_000),
  handshakeTimeout: seconds(1, 3600),
  idleTimeout: seconds(0, 86_400 * 30),
  maxOptions: count(100_000),
  sendHighWaterBytes: bytes(64 * KiB, 1 * GiB),
  inFlightBytes: bytes(64 * MiB, 64 * GiB),
});

export const LimitsSchema = z.strictObject({
  iscsi: IscsiLimitsSchema.optional(),
  nbd: NbdLimitsSchema.optional(),
  /** Seconds shutdown waits for in-flight backstore I/O before the final flush. */
  shutdownIoWait: seconds(0, 3600),
  /** Seconds a TMF (ABORT TASK, LUN RESET...) waits for tasks stuck in a backstore before answering (core default 5). */
  tmfTaskWait: seconds(1, 3600),
});

export type LimitsConfig = z.output<typeof LimitsSchema>;
