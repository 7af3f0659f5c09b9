// Loading and validating a configuration: schema first (config-schema.ts), then
// the cross-references a schema cannot see (a LUN naming a missing backstore, a
// mapped LUN pointing at no TPG LUN). Every problem is reported with its JSON
// path, all at once, so one edit fixes them all.

import { readFile } from 'node:fs/promises';

import { commonConfig, descriptorOf } from '../backstores/registry.js';
import { iscsiNameProblem } from '../protocols/iscsi/names.js';
import { keySettingProblem } from '../protocols/iscsi/keys.js';
import { ConfigSchema, type LunkitConfig } from './config-schema.js';
import { ConfigError } from './errors.js';
import { bootlabProblems } from './bootlab-config.js';
import { migrateConfig } from './migrate.js';

export { ConfigError };

function pathOf(parts: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(p))) out += out ? `.${String(p)}` : String(p);
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(top level)';
}

/** Parses and validates a configuration object; throws ConfigError naming every problem. */
export function parseConfig(input: unknown, source = ''): LunkitConfig {
  const res = ConfigSchema.safeParse(input);
  if (!res.success) {
    throw new ConfigError(res.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`), source);
  }
  const cfg = res.data;
  const problems: string[] = [];
  for (const [iqn, target] of Object.entries(cfg.iscsi.targets)) {
    const bad = iscsiNameProblem(iqn);
    if (bad) problems.push(`${pathOf(['iscsi', 'targets', iqn])}: ${bad}`);
    for (const [tag, tpg] of Object.entries(target.tpgs)) {
      const base = ['iscsi', 'targets', iqn, 'tpgs', tag];
      const t = Number(tag);
      if (t < 1 || t > 65535) problems.push(`${pathOf(base)}: TPG tag ${tag} is outside 1..65535`);
      for (const [lun, ref] of Object.entries(tpg.luns)) {
        const bs = typeof ref === 'string' ? ref : ref.backstore;
        if (Number(lun) > 16383) problems.push(`${pathOf([...base, 'luns', lun])}: LUN ${lun} is outside 0..16383`);
        if (!(bs in cfg.backstores)) problems.push(`${pathOf([...base, 'luns', lun])}: no backstore named "${bs}"`);
      }
      for (const [initiator, acl] of Object.entries(tpg.acls)) {
        const badName = iscsiNameProblem(initiator);
        if (badName) problems.push(`${pathOf([...base, 'acls', initiator])}: ${badName}`);
        for (const [mapped, m] of Object.entries(acl.mappedLuns ?? {})) {
          const tpgLun = typeof m === 'number' ? m : m.tpgLun;
          if (!(String(tpgLun) in tpg.luns)) {
            problems.push(`${pathOf([...base, 'acls', initiator, 'mappedLuns', mapped])}: TPG ${tag} has no LUN ${tpgLun}`);
          }
        }
        if (tpg.attributes.authentication && !acl.chap) {
          problems.push(`${pathOf([...base, 'acls', initiator])}: authentication is on for TPG ${tag} but this ACL has no chap credentials`);
        }
      }
      for (const [key, value] of Object.entries(tpg.parameters)) {
        // Login keys: the type and range of the key table (protocols/iscsi/keys.ts).
        const why = keySettingProblem(key, value);
        if (why) problems.push(`${pathOf([...base, 'parameters', key])}: ${why}`);
      }
      if (tpg.attributes.generateNodeAcls && tpg.attributes.authentication) {
        problems.push(`${pathOf([...base, 'attributes'])}: demo mode (generateNodeAcls) cannot be combined with authentication`);
      }
    }
  }
  for (const [bsName, spec] of Object.entries(cfg.backstores)) {
    if (descriptorOf(spec).fixedSize !== undefined) continue; // the size comes from the remote
    const bs = commonConfig(spec);
    if (bs.size !== undefined && bs.blockSize !== undefined && bs.size % bs.blockSize !== 0) {
      problems.push(`${pathOf(['backstores', bsName, 'size'])}: ${bs.size} is not a multiple of the block size ${bs.blockSize}`);
    }
    if (bs.size === 0) problems.push(`${pathOf(['backstores', bsName, 'size'])}: size must be greater than 0`);
  }
  // A CA only says which certificates TLS clients must show; without require a
  // plain client skips TLS and the check with it (nbdkit --tls=on
  // --tls-verify-peer does the same, silently). Refused rather than implied, so
  // the file says what the server does (docs/security.md).
  if (cfg.nbd?.tls?.caFile !== undefined && !cfg.nbd.tls.require) {
    problems.push('nbd.tls: caFile is set but require is false, so clients without TLS (and without a certificate) would still be served; set nbd.tls.require to true');
  }
  for (const [exp, e] of Object.entries(cfg.nbd?.exports ?? {})) {
    if (!(e.backstore in cfg.backstores)) problems.push(`${pathOf(['nbd', 'exports', exp, 'backstore'])}: no backstore named "${e.backstore}"`);
  }
  for (const [mnt, m] of Object.entries(cfg.fuse ?? {})) {
    for (const [exp, e] of Object.entries(m.exports)) {
      if (!(e.backstore in cfg.backstores)) problems.push(`${pathOf(['fuse', mnt, 'exports', exp, 'backstore'])}: no backstore named "${e.backstore}"`);
    }
  }
  problems.push(...bootlabProblems(cfg, pathOf));
  if (cfg.iscsi.discoveryAuth?.enabled && !cfg.iscsi.discoveryAuth.chap) {
    problems.push('iscsi.discoveryAuth: enabled needs chap credentials');
  }
  if (problems.length) throw new ConfigError(problems, source);
  return cfg;
}

/**
 * Reads a JSON configuration file and brings it to the current schema version;
 * ConfigError names the file when it cannot be read or is not JSON.
 */
export async function readConfigJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read the file: ${(e as Error).message}`], path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`not valid JSON: ${(e as Error).message}`], path);
  }
  return migrateConfig(json, path).doc;
}

export async function loadConfigFile(path: string): Promise<LunkitConfig> {
  return parseConfig(await readConfigJson(path), path);
}

export type { LunkitConfig };
