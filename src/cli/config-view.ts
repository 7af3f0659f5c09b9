// Reading the daemon's configuration for the verbs that show it (ls, list,
// get): one config.get, then pure functions over the document.

import type { ConfigDoc } from '../daemon/config-doc.js';
import { ControlError, type ControlClient } from '../daemon/control-client.js';

export interface ConfigGetResult {
  config: ConfigDoc;
  revision: number;
}

export function getConfig(client: ControlClient): Promise<ConfigGetResult> {
  return client.call<ConfigGetResult>('config.get');
}

type TpgDoc = ConfigDoc['iscsi']['targets'][string]['tpgs'][string];

/** The TPG of a target named on the command line, or a not-found error naming what is missing. */
export function findTpg(cfg: ConfigDoc, iqn: string, tpg: number): TpgDoc {
  const t = cfg.iscsi?.targets?.[iqn];
  if (!t) throw new ControlError('ERR_NOT_FOUND', `no target named ${iqn}`);
  const g = t.tpgs[String(tpg)];
  if (!g) throw new ControlError('ERR_NOT_FOUND', `target ${iqn} has no TPG ${tpg}`);
  return g;
}

/** Left-aligned columns separated by two spaces; the header row first. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
