// Test harness for the core: an in-memory BackstoreOps and a loopback setup.
// Not a production backstore (SBC owns src/backstores).

import { ScsiCore, type DeviceOptions } from '../../../src/core/engine.js';
import type { BackstoreCaps, BackstoreOps, Extent, ScsiDeviceHandle } from '../../../src/core/types.js';
import { LoopbackFabric, MutableLunMap, type LoopbackNexus } from '../../../src/fabrics/loopback/index.js';

export class MemoryBackstore implements BackstoreOps {
  readonly kind = 'memory';
  readonly caps: BackstoreCaps;
  readonly data: Buffer;
  /** While set, I/O waits for it (lets tests keep a task in flight). */
  private gate: Promise<void> | null = null;
  /** Error to throw from the next I/O (then cleared). */
  failNext: NodeJS.ErrnoException | null = null;
  flushes = 0;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly blockSize: 512 | 4096 = 512,
    caps: Partial<BackstoreCaps> = {},
  ) {
    this.data = Buffer.alloc(size);
    this.caps = {
      canWrite: true,
      canFlush: true,
      canFua: true,
      canUnmap: true,
      canWriteZeroes: true,
      canExtents: false,
      unmapReadsZero: true,
      thin: false,
      rotationRate: 1,
      canMultiConn: true,
      ...caps,
    };
  }

  /** Block I/O until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((r) => {
      release = () => {
        this.gate = null;
        r();
      };
    });
    return release;
  }

  private async io(): Promise<void> {
    if (this.gate) await this.gate;
    const e = this.failNext;
    if (e) {
      this.failNext = null;
      throw e;
    }
  }

  async read(buf: Buffer, offset: number): Promise<void> {
    await this.io();
    this.data.copy(buf, 0, offset, offset + buf.length);
  }

  async write(buf: Buffer, offset: number): Promise<void> {
    await this.io();
    buf.copy(this.data, offset);
  }

  async flush(): Promise<void> {
    await this.io();
    this.flushes++;
  }

  async unmap(offset: number, length: number): Promise<void> {
    await this.io();
    this.data.fill(0, offset, offset + length);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    await this.io();
    this.data.fill(0, offset, offset + length);
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    return [{ offset, length, hole: false }];
  }

  async close(): Promise<void> {}
}

export function errnoError(code: string): NodeJS.ErrnoException {
  const e = new Error(code) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export interface Harness {
  core: ScsiCore;
  fabric: LoopbackFabric;
  store: MemoryBackstore;
  dev: ScsiDeviceHandle;
  luns: MutableLunMap;
  /** Connect a nexus that sees the device at LUN 0, with its POWER ON UA already consumed. */
  connect(opts?: { clearUa?: boolean; isid?: string; luns?: MutableLunMap }): Promise<LoopbackNexus>;
}

export function harness(opts: { size?: number; blockSize?: 512 | 4096; caps?: Partial<BackstoreCaps>; device?: Partial<DeviceOptions> } = {}): Harness {
  const core = new ScsiCore();
  const fabric = new LoopbackFabric(core);
  const store = new MemoryBackstore('mem0', opts.size ?? 1024 * 1024, opts.blockSize ?? 512, opts.caps);
  const dev = core.createDevice(store, { name: 'mem0', ...opts.device });
  const luns = new MutableLunMap().set(0, dev);
  return {
    core,
    fabric,
    store,
    dev,
    luns,
    async connect(o = {}) {
      const nexus = fabric.connect({ luns: o.luns ?? luns, isid: o.isid });
      if (o.clearUa !== false) {
        // Like an initiator's login: TEST UNIT READY until the power-on UA is gone.
        for (let i = 0; i < 10; i++) {
          const r = await nexus.command(0, TUR);
          if (r.status === 0) break;
        }
      }
      return nexus;
    },
  };
}

export const TUR = [0x00, 0, 0, 0, 0, 0];

export function inquiryCdb(evpd: boolean, page: number, alloc: number): number[] {
  return [0x12, evpd ? 1 : 0, page, (alloc >> 8) & 0xff, alloc & 0xff, 0];
}

export function modeSense6(page: number, opts: { pc?: number; dbd?: boolean; subpage?: number; alloc?: number } = {}): number[] {
  return [0x1a, opts.dbd ? 0x08 : 0, ((opts.pc ?? 0) << 6) | page, opts.subpage ?? 0, opts.alloc ?? 255, 0];
}

export function modeSense10(page: number, opts: { pc?: number; dbd?: boolean; llbaa?: boolean; alloc?: number } = {}): number[] {
  const alloc = opts.alloc ?? 1024;
  return [0x5a, (opts.dbd ? 0x08 : 0) | (opts.llbaa ? 0x10 : 0), ((opts.pc ?? 0) << 6) | page, 0, 0, 0, 0, alloc >> 8, alloc & 0xff, 0];
}

export function write10(lba: number, blocks: number): number[] {
  return [0x2a, 0, (lba >>> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
}

export function read10(lba: number, blocks: number): number[] {
  return [0x28, 0, (lba >>> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
}

/** Decode key/asc/ascq of fixed (0x70) or descriptor (0x72) sense, naively. */
export function senseOf(sense: Buffer | undefined): { key: number; asc: number; ascq: number; format: number } {
  if (!sense) throw new Error('no sense');
  const format = sense[0] & 0x7f;
  if (format === 0x72) return { key: sense[1] & 0x0f, asc: sense[2], ascq: sense[3], format };
  return { key: sense[2] & 0x0f, asc: sense[12], ascq: sense[13], format };
}
