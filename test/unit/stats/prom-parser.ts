// A small, strict parser for Prometheus text format 0.0.4, written for the
// tests from the format's description (not from our renderer): it checks
// every line and returns the samples.

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value in: ${line}`);
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let v = '';
    for (;;) {
      if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
      const c = text[j];
      if (c === '\\') {
        const n = text[j + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`bad escape \\${n} in: ${line}`);
        j += 2;
        continue;
      }
      if (c === '"') break;
      if (c === '\n') throw new Error(`raw newline in label value: ${line}`);
      v += c;
      j++;
    }
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    labels[name] = v;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') throw new Error(`expected , in: ${line}`);
      i++;
    }
  }
  return labels;
}

/** Parses a whole exposition; throws on the first line that breaks the format. */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const closed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // other comments are allowed
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
      let f = families.get(name);
      if (f && f !== current) throw new Error(`family ${name} split: ${line}`);
      if (!f) {
        if (current) closed.add(current.name);
        f = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, f);
        current = f;
      }
      if (kind === 'TYPE') {
        if (f.samples.length > 0) throw new Error(`TYPE after samples: ${line}`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type: ${line}`);
        f.type = rest;
      } else {
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`bad HELP escape: ${line}`);
        f.help = rest;
      }
      continue;
    }
    if (line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const [, name, labelText, value] = m;
    const base = current && (name === current.name || (['histogram', 'summary'].includes(current.type) && /_(bucket|sum|count)$/.test(name) && name.replace(/_(bucket|sum|count)$/, '') === current.name));
    if (!current || !base) throw new Error(`sample outside its family: ${line}`);
    if (closed.has(current.name)) throw new Error(`family reopened: ${line}`);
    const labels = labelText ? parseLabels(labelText, line) : {};
    current.samples.push({ name, labels, value: parseValue(value, line) });
  }
  for (const f of families.values()) {
    if (f.type === 'counter') for (const s of f.samples) if (!(s.value >= 0)) throw new Error(`negative counter ${f.name}`);
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

function checkHistogram(f: PromFamily): void {
  const series = new Map<string, PromSample[]>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    if (s.name.endsWith('_bucket') && le === undefined) throw new Error(`${f.name} bucket without le`);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const list of series.values()) {
    const buckets = list.filter((s) => s.name.endsWith('_bucket'));
    let last = -Infinity;
    let lastCount = 0;
    for (const b of buckets) {
      const le = parseValue(b.labels.le, b.labels.le);
      if (!(le > last)) throw new Error(`${f.name} buckets not ascending`);
      if (b.value < lastCount) throw new Error(`${f.name} buckets not cumulative`);
      last = le;
      lastCount = b.value;
    }
    if (last !== Infinity) throw new Error(`${f.name} has no +Inf bucket`);
    const count = list.find((s) => s.name.endsWith('_count'));
    if (!count || count.value !== lastCount) throw new Error(`${f.name}_count differs from the +Inf bucket`);
    if (!list.some((s) => s.name.endsWith('_sum'))) throw new Error(`${f.name} has no _sum`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(fams: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = fams.get(name) ?? fams.get(name.replace(/_(bucket|sum|count)$/, ''));
  const hits = (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}
