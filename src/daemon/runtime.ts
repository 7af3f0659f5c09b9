// The running lunkit: one SCSI core, the backstores of the configuration opened
// as devices, and the iSCSI target serving them. `lunkit serve` and the demo
// both start one of these; tests start it in-process on port 0.
//
// Start is all-or-nothing: if a backstore cannot be opened or a portal cannot
// bind, everything opened so far is closed again before the error is thrown.
// Stop finishes what is in flight (bounded by graceMs), then flushes every
// backstore so a SIGTERM loses no acknowledged write.

import { readFile } from 'node:fs/promises';
import { ScsiCore } from '../core/engine.js';
import type { BackstoreOps, ScsiDeviceHandle } from '../core/types.js';
import { createBackstore } from '../backstores/index.js';
import { IscsiTargetServer } from '../fabrics/iscsi/server.js';
import { NbdServer } from '../fabrics/nbd/server.js';
import type { AclConfig, IscsiTargetConfig, TpgConfig } from '../fabrics/iscsi/config.js';
import type { LunkitConfig } from './config-schema.js';
import { silentLogger, type Logger } from '../util/log.js';

export interface RuntimeOptions {
  logger?: Logger;
}

export interface ListeningPortal {
  host: string;
  port: number;
}

export class LunkitRuntime {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly core: ScsiCore,
    readonly backstores: Map<string, { ops: BackstoreOps; device: ScsiDeviceHandle }>,
    readonly iscsi: IscsiTargetServer,
    /** The NBD server fabric, when the configuration has an `nbd` section. */
    readonly nbd: NbdServer | undefined,
    private readonly logger: Logger,
  ) {}

  static async start(cfg: LunkitConfig, opts: RuntimeOptions = {}): Promise<LunkitRuntime> {
    const logger = opts.logger ?? silentLogger;
    const core = new ScsiCore();
    const backstores = new Map<string, { ops: BackstoreOps; device: ScsiDeviceHandle }>();
    let iscsi: IscsiTargetServer | undefined;
    let nbd: NbdServer | undefined;
    try {
      for (const [name, bs] of Object.entries(cfg.backstores)) {
        const ops = await createBackstore(
          bs.type === 'file'
            ? { type: 'file', name, path: bs.path, size: bs.size, create: bs.create, sparse: bs.thin, writeCache: bs.writeCache, readOnly: bs.readOnly, blockSize: bs.blockSize }
            : bs.type === 'nbd'
              ? { type: 'nbd', name, url: bs.url, blockSize: bs.blockSize, readOnly: bs.readOnly, connectTimeoutMs: bs.connectTimeoutMs, retries: bs.retries }
              : { type: bs.type, name, size: bs.size, blockSize: bs.blockSize },
        );
        const device = core.createDevice(ops, {
          name,
          serial: bs.serial,
          writeCache: bs.type === 'file' ? bs.writeCache : true,
          readOnly: bs.type === 'null' ? false : bs.readOnly,
          removable: bs.type === 'null' ? false : bs.removable,
          thin: bs.type === 'file' ? bs.thin && ops.caps.thin : ops.caps.thin,
        });
        backstores.set(name, { ops, device });
        logger.info('backstore opened', { name, type: bs.type, size: ops.size, blockSize: ops.blockSize });
      }
      const d = cfg.iscsi.discoveryAuth;
      iscsi = new IscsiTargetServer(core, {
        logger,
        discoveryAuth: d
          ? {
              enabled: d.enabled,
              userid: d.chap?.userid,
              password: d.chap?.password,
              mutualUserid: d.mutualChap?.userid,
              mutualPassword: d.mutualChap?.password,
            }
          : undefined,
      });
      for (const [iqn, t] of Object.entries(cfg.iscsi.targets)) {
        await iscsi.addTarget(toTargetConfig(iqn, t, backstores));
      }
      await iscsi.listen();
      for (const a of iscsi.addresses()) logger.info('iSCSI portal listening', { host: a.host, port: a.port });
      if (cfg.nbd) {
        const tls = cfg.nbd.tls;
        nbd = new NbdServer(core, {
          logger,
          tls: tls
            ? {
                cert: await readFile(tls.certFile),
                key: await readFile(tls.keyFile),
                ca: tls.caFile ? await readFile(tls.caFile) : undefined,
                require: tls.require,
              }
            : undefined,
          listen: cfg.nbd.listen.map((a) => ('path' in a ? { path: a.path } : { host: a.host, port: a.port })),
        });
        for (const [exp, e] of Object.entries(cfg.nbd.exports)) {
          const bs = backstores.get(e.backstore);
          if (!bs) throw new Error(`NBD export "${exp}" names the missing backstore "${e.backstore}"`);
          nbd.setExport(exp, { device: bs.device, readOnly: e.readOnly, description: e.description });
        }
        await nbd.listen();
        for (const a of nbd.addresses()) logger.info('NBD server listening', { host: a.host, port: a.port });
        for (const path of nbd.unixPaths()) logger.info('NBD server listening', { socket: path });
      }
      return new LunkitRuntime(core, backstores, iscsi, nbd, logger);
    } catch (e) {
      await nbd?.close({ graceMs: 0 }).catch(() => {});
      await iscsi?.close({ graceMs: 0 }).catch(() => {});
      for (const { ops } of backstores.values()) await ops.close().catch(() => {});
      throw e;
    }
  }

  addresses(): ListeningPortal[] {
    return this.iscsi.addresses();
  }

  /** NBD listeners (empty without an `nbd` section). */
  nbdAddresses(): ListeningPortal[] {
    return this.nbd?.addresses() ?? [];
  }

  /** NBD Unix socket listeners (their paths). */
  nbdSocketPaths(): string[] {
    return this.nbd?.unixPaths() ?? [];
  }

  /** Idempotent; resolves when every backstore is flushed and closed. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping', { graceMs });
      await this.iscsi.close({ graceMs }).catch((e: unknown) => this.logger.warn('iSCSI close failed', { err: e }));
      await this.nbd?.close({ graceMs }).catch((e: unknown) => this.logger.warn('NBD close failed', { err: e }));
      await this.core.flushAll().catch((e: unknown) => this.logger.warn('flush failed', { err: e }));
      for (const [name, { ops }] of this.backstores) {
        await ops.close().catch((e: unknown) => this.logger.warn('backstore close failed', { name, err: e }));
      }
      this.logger.info('stopped');
    })();
    return this.stopping;
  }
}

type TargetData = LunkitConfig['iscsi']['targets'][string];

function toTargetConfig(
  iqn: string,
  t: TargetData,
  backstores: Map<string, { device: ScsiDeviceHandle }>,
): IscsiTargetConfig {
  const tpgs: TpgConfig[] = Object.entries(t.tpgs).map(([tag, tpg]) => ({
    tag: Number(tag),
    enabled: tpg.enabled,
    portals: tpg.portals.map((p) => ({ host: p.host, port: p.port })),
    luns: Object.entries(tpg.luns).map(([lun, ref]) => {
      const name = typeof ref === 'string' ? ref : ref.backstore;
      const bs = backstores.get(name);
      if (!bs) throw new Error(`LUN ${lun} of ${iqn} names the missing backstore "${name}"`);
      return { lun: Number(lun), device: bs.device };
    }),
    acls: Object.entries(tpg.acls).map(
      ([initiator, acl]): AclConfig => ({
        initiator,
        mappedLuns: Object.entries(acl.mappedLuns ?? {}).map(([mapped, m]) =>
          typeof m === 'number'
            ? { mappedLun: Number(mapped), tpgLun: m, readOnly: false }
            : { mappedLun: Number(mapped), tpgLun: m.tpgLun, readOnly: m.readOnly },
        ),
        chap: acl.chap,
        mutualChap: acl.mutualChap,
      }),
    ),
    attributes: { ...tpg.attributes, cacheDynamicAcls: false },
    parameters: tpg.parameters,
  }));
  return { iqn, alias: t.alias, tpgs };
}
