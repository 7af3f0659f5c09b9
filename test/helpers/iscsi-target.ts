// Starts an in-process iSCSI target (real ScsiCore + ramdisk LUNs) on
// 127.0.0.1, port chosen by the OS, for one test. close() tears it all down.

import { execFile } from 'node:child_process';
import { ScsiCore } from '../../src/core/engine.js';
import { RamdiskBackstore } from '../../src/backstores/ramdisk/ramdisk.js';
import { IscsiTargetServer } from '../../src/fabrics/iscsi/server.js';
import { DEFAULT_TPG_ATTRIBUTES, type AclConfig, type DiscoveryAuth, type IscsiLogger, type TpgAttributes } from '../../src/fabrics/iscsi/config.js';

export interface TestTargetOptions {
  iqn?: string;
  /** Ramdisk LUN sizes in bytes (LUN 0, 1, ...); default one 64 MiB LUN. */
  lunSizes?: number[];
  blockSize?: 512 | 4096;
  acls?: AclConfig[];
  attributes?: Partial<TpgAttributes>;
  parameters?: Record<string, string>;
  discoveryAuth?: DiscoveryAuth;
  alias?: string;
  logger?: IscsiLogger;
}

export interface TestTarget {
  core: ScsiCore;
  server: IscsiTargetServer;
  iqn: string;
  port: number;
  /** iscsi://127.0.0.1:port/ (discovery) or .../iqn/lun. */
  url(lun?: number): string;
  close(): Promise<void>;
}

export async function startIscsiTarget(opts: TestTargetOptions = {}): Promise<TestTarget> {
  const iqn = opts.iqn ?? 'iqn.2024-01.org.lunkit.test:target';
  const core = new ScsiCore();
  const stores: RamdiskBackstore[] = [];
  const luns = (opts.lunSizes ?? [64 * 1024 * 1024]).map((size, lun) => {
    const store = new RamdiskBackstore({ name: `ram${lun}`, size, blockSize: opts.blockSize ?? 512 });
    stores.push(store);
    return { lun, device: core.createDevice(store, { name: `ram${lun}` }) };
  });
  const server = new IscsiTargetServer(core, { discoveryAuth: opts.discoveryAuth, logger: opts.logger });
  await server.addTarget({
    iqn,
    alias: opts.alias,
    tpgs: [
      {
        tag: 1,
        enabled: true,
        portals: [{ host: '127.0.0.1', port: 0 }],
        luns,
        acls: opts.acls ?? [],
        attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: opts.acls === undefined, ...opts.attributes },
        parameters: opts.parameters ?? {},
      },
    ],
  });
  await server.listen();
  const port = server.addresses()[0].port;
  return {
    core,
    server,
    iqn,
    port,
    url: (lun?: number) => (lun === undefined ? `iscsi://127.0.0.1:${port}/` : `iscsi://127.0.0.1:${port}/${iqn}/${lun}`),
    async close() {
      await server.close({ graceMs: 0 });
      for (const s of stores) await s.close();
    },
  };
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a libiscsi tool with a timeout; never rejects. */
export function runTool(cmd: string, args: string[], timeoutMs = 20_000): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
