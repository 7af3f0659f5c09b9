// The side sessions of the live fuzzer: a normal client on each fabric that
// writes random data and reads it back while the fuzzer runs, and checks
// every byte against a shadow copy of what it wrote (fresh writes and older
// regions both). They use the side target / side export, a backstore the
// fuzz lanes cannot name, so any mismatch or error is the fuzzing leaking
// into another client's service. The iSCSI side owns the first half of the
// side LUN, the NBD side the second half.

import { read16, testUnitReady, write16, IscsiSession, type SenseData } from '../../src/initiator/index.js';
import { NbdClient } from '../../src/nbd-client/index.js';
import { LUN_BYTES, SIDE_EXPORT, SIDE_INITIATOR, SIDE_IQN, type LiveDaemon } from './live-daemon.js';
import { Rng } from './live-mutate.js';

const BLOCK = 512;
const HALF = LUN_BYTES / 2;

export interface SideReport {
  /** Reads whose bytes matched the shadow copy. */
  verified: number;
  writes: number;
  failures: string[];
}

interface BlockDevice {
  write(offset: number, data: Buffer): Promise<void>;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

function status(s: number, sense: SenseData | undefined): string {
  return `status 0x${s.toString(16)}${sense ? `, sense ${sense.keyName} ${sense.asc.toString(16)}/${sense.ascq.toString(16)}` : ''}`;
}

async function iscsiSide(d: LiveDaemon): Promise<BlockDevice> {
  const session = await IscsiSession.open({ host: '127.0.0.1', port: d.sidePort, targetName: SIDE_IQN, initiatorName: SIDE_INITIATOR });
  // The first command of a new nexus gets the POWER ON unit attention.
  for (let i = 0; i < 4 && !(await testUnitReady(session, 0)).ok; i++);
  return {
    async write(offset, data) {
      const r = await write16(session, 0, offset / BLOCK, data, { blockSize: BLOCK });
      if (!r.ok) throw new Error(`WRITE(16) at ${offset}: ${status(r.status, r.sense)}`);
    },
    async read(offset, length) {
      const r = await read16(session, 0, offset / BLOCK, length / BLOCK, { blockSize: BLOCK });
      if (!r.ok) throw new Error(`READ(16) at ${offset}: ${status(r.status, r.sense)}`);
      return r.value;
    },
    close: () => session.logout(),
  };
}

async function nbdSide(d: LiveDaemon): Promise<BlockDevice> {
  const client = await NbdClient.connect(`nbd://127.0.0.1:${d.nbdPort}/${SIDE_EXPORT}`);
  return {
    write: (offset, data) => client.write(data, HALF + offset),
    read: (offset, length) => client.read(HALF + offset, length),
    close: () => client.disconnect(),
  };
}

export class SideWorkload {
  readonly report: SideReport = { verified: 0, writes: 0, failures: [] };
  private readonly shadow = Buffer.alloc(HALF);
  private running = true;
  private loop: Promise<void> | undefined;
  private dev: BlockDevice | undefined;

  constructor(
    readonly fabric: 'iscsi' | 'nbd',
    private readonly seed: number,
  ) {}

  async start(d: LiveDaemon): Promise<void> {
    this.dev = this.fabric === 'iscsi' ? await iscsiSide(d) : await nbdSide(d);
    this.loop = this.run(this.dev);
  }

  private async verify(dev: BlockDevice, offset: number, length: number): Promise<void> {
    const got = await dev.read(offset, length);
    if (!got.equals(this.shadow.subarray(offset, offset + length))) {
      let at = 0;
      while (at < length && got[at] === this.shadow[offset + at]) at++;
      throw new Error(`${this.fabric} side: ${length} bytes at ${offset} differ from what was written (first at +${at})`);
    }
    this.report.verified++;
  }

  private async run(dev: BlockDevice): Promise<void> {
    const rng = new Rng(this.seed, this.fabric === 'iscsi' ? 1 : 2);
    while (this.running) {
      try {
        const length = BLOCK * (1 + rng.int(128));
        const offset = BLOCK * rng.int((HALF - length) / BLOCK);
        const data = rng.bytes(length);
        await dev.write(offset, data);
        data.copy(this.shadow, offset);
        this.report.writes++;
        await this.verify(dev, offset, length);
        // An older region too: nothing else may have changed it since.
        await this.verify(dev, BLOCK * rng.int((HALF - 65536) / BLOCK), 65536);
      } catch (e) {
        this.report.failures.push((e as Error).message);
        if (this.report.failures.length >= 5) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Stops the loop, verifies the whole half once more, and closes the session. */
  async stop(): Promise<SideReport> {
    this.running = false;
    await this.loop;
    if (this.dev) {
      try {
        for (let off = 0; off < HALF; off += 1 << 20) await this.verify(this.dev, off, 1 << 20);
        await this.dev.close();
      } catch (e) {
        this.report.failures.push(`final pass: ${(e as Error).message}`);
      }
    }
    return this.report;
  }
}
