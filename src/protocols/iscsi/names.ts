// iSCSI name validation (RFC 3720 §3.2.6, carried into RFC 7143 §4.2.7):
//   iqn.<yyyy-mm>.<reversed domain>[:<unique>]
//   eui.<16 hex digits>
//   naa.<16 or 32 hex digits>            (RFC 3980)
// Names are at most 223 bytes and, after stringprep, lower case; we accept
// ASCII only and say exactly what is wrong, for config files and the CLI.

const IQN = /^iqn\.(\d{4})-(\d{2})\.([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(.+))?$/;
const UNIQUE_OK = /^[a-z0-9.:-]+$/;

/** Returns undefined when the name is valid, else a reason a user can act on. */
export function iscsiNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (Buffer.byteLength(name) > 223) return 'an iSCSI name is at most 223 bytes (RFC 3720 §3.2.6.1)';
  if (name !== name.toLowerCase()) return 'iSCSI names are lower case (RFC 3722 stringprep maps them so)';
  if (name.startsWith('iqn.')) {
    const m = IQN.exec(name);
    if (!m) return 'expected iqn.yyyy-mm.reversed.domain[:identifier], e.g. iqn.2003-01.org.example:disk1';
    const month = Number(m[2]);
    if (month < 1 || month > 12) return `month ${m[2]} in "${m[1]}-${m[2]}" is not 01..12`;
    if (m[4] !== undefined && !UNIQUE_OK.test(m[4])) return 'the part after ":" may hold only a-z, 0-9, ".", "-" and ":"';
    return undefined;
  }
  if (name.startsWith('eui.')) {
    return /^eui\.[0-9a-f]{16}$/.test(name) ? undefined : 'expected eui. followed by exactly 16 hex digits';
  }
  if (name.startsWith('naa.')) {
    return /^naa\.(?:[0-9a-f]{16}|[0-9a-f]{32})$/.test(name) ? undefined : 'expected naa. followed by 16 or 32 hex digits';
  }
  return 'an iSCSI name starts with "iqn.", "eui." or "naa."';
}

export function isValidIscsiName(name: string): boolean {
  return iscsiNameProblem(name) === undefined;
}

export type IscsiNameType = 'iqn' | 'eui' | 'naa';

/** The name's format by its prefix (RFC 3720 §3.2.6.3), whether or not the rest is valid. */
export function iscsiNameType(name: string): IscsiNameType | undefined {
  const prefix = name.slice(0, 4).toLowerCase();
  if (prefix === 'iqn.') return 'iqn';
  if (prefix === 'eui.') return 'eui';
  if (prefix === 'naa.') return 'naa';
  return undefined;
}

/**
 * A whole sentence for a user when `name` is not a valid iSCSI name, naming
 * what it was meant to be ("target name", "initiator name"), the reason, and
 * the lower-case spelling when that alone would fix it; undefined when valid.
 */
export function iscsiNameMessage(name: string, role = 'iSCSI name'): string | undefined {
  const problem = iscsiNameProblem(name);
  if (problem === undefined) return undefined;
  const lower = name.toLowerCase();
  const hint = lower !== name && iscsiNameProblem(lower) === undefined ? ` (did you mean "${lower}"?)` : '';
  return `${role} "${name}" is not a valid iSCSI name: ${problem}${hint}`;
}
