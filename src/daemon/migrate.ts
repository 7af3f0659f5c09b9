// Configuration schema versions. A saved document carries `version`; loading
// runs it through the chain of N -> N+1 steps up to CONFIG_VERSION before the
// schema sees it, so an old saveconfig keeps working after an upgrade. A
// document newer than this lunkit is refused (we would drop what we do not
// know), with a message that says so.
//
// Version 0 was the draft format in which a TPG's `luns` was an array of
// { lun, backstore } (or bare backstore names, the index being the LUN number);
// version 1 keys LUNs by number so an error path names the LUN a user edits.

import { ConfigError } from './errors.js';
import { CONFIG_VERSION } from './config-schema.js';

type Json = Record<string, unknown>;
type Step = (doc: Json) => Json;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** version 0 -> 1: TPG `luns` arrays become maps keyed by LUN number. */
function v0to1(doc: Json): Json {
  const iscsi = doc.iscsi;
  if (isObject(iscsi) && isObject(iscsi.targets)) {
    for (const target of Object.values(iscsi.targets)) {
      if (!isObject(target) || !isObject(target.tpgs)) continue;
      for (const tpg of Object.values(target.tpgs)) {
        if (!isObject(tpg) || !Array.isArray(tpg.luns)) continue;
        const luns: Json = {};
        tpg.luns.forEach((entry: unknown, i) => {
          if (typeof entry === 'string') luns[String(i)] = entry;
          else if (isObject(entry)) luns[String(typeof entry.lun === 'number' ? entry.lun : i)] = entry.backstore;
        });
        tpg.luns = luns;
      }
    }
  }
  return { ...doc, version: 1 };
}

/** MIGRATIONS[n] turns version n into version n+1. */
const MIGRATIONS: readonly Step[] = [v0to1];

export interface Migrated {
  doc: unknown;
  /** The version the document had (CONFIG_VERSION when it had none). */
  fromVersion: number;
}

/**
 * Brings a configuration document to CONFIG_VERSION. Anything that is not an
 * object, or has a version that is not a number, is returned unchanged for the
 * schema to reject with its path. Throws ConfigError for a version newer than
 * CONFIG_VERSION.
 */
export function migrateConfig(input: unknown, source = '', chain: readonly Step[] = MIGRATIONS, current = CONFIG_VERSION): Migrated {
  if (!isObject(input)) return { doc: input, fromVersion: current };
  const v = input.version ?? current;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return { doc: input, fromVersion: current };
  if (v > current) {
    throw new ConfigError([`version: ${v} is newer than this lunkit understands (${current}); upgrade lunkit to read this file`], source);
  }
  let doc: Json = structuredClone(input);
  for (let n = v; n < current; n++) doc = chain[n](doc);
  return { doc, fromVersion: v };
}
