// Log lines with fields a remote peer chose: golden output, written by hand.
// A newline, an ANSI escape or a bidi override in an InitiatorName must not
// reach the log raw (it would forge lines or repaint the operator's terminal).

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, escapeLogText, formatLogLine, MAX_FIELD_CHARS } from '../../../src/util/log.js';

const T = '2026-12-08T01:00:00.000Z';

function capture(json = false): { log: ReturnType<typeof createLogger>; lines: () => string[] } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const log = createLogger({ level: 'debug', out, json, now: () => new Date(T) });
  return { log, lines: () => chunks.join('').split('\n').slice(0, -1) };
}

describe('log field escaping (golden)', () => {
  it('writes plain values bare and quotes values with spaces, quotes, = or backslashes', () => {
    expect(formatLogLine(T, 'info', 'iSCSI login', { initiator: 'iqn.1994-05.com.redhat:c1', tsih: 3, ok: true })).toBe(
      '2026-12-08T01:00:00.000Z info  iSCSI login initiator=iqn.1994-05.com.redhat:c1 tsih=3 ok=true',
    );
    expect(formatLogLine(T, 'warn', 'm', { a: 'two words', b: 'x=y', c: 'say "hi"', d: 'C:\\dir', e: '' })).toBe(
      '2026-12-08T01:00:00.000Z warn  m a="two words" b="x=y" c="say \\"hi\\"" d="C:\\\\dir" e=""',
    );
  });

  it('escapes control characters of a hostile InitiatorName (a forged line, ANSI, NUL, DEL, C1)', () => {
    const forged = 'iqn.x\n2026-12-08T01:00:00.000Z info  iSCSI login initiator=admin';
    expect(formatLogLine(T, 'info', 'iSCSI login failed', { initiator: forged })).toBe(
      '2026-12-08T01:00:00.000Z info  iSCSI login failed initiator="iqn.x\\n2026-12-08T01:00:00.000Z info  iSCSI login initiator=admin"',
    );
    expect(formatLogLine(T, 'info', 'm', { target: '\u001b[2J\u001b[31mred\r\t\u0000\u007f\u0085' })).toBe(
      '2026-12-08T01:00:00.000Z info  m target="\\u001b[2J\\u001b[31mred\\r\\t\\u0000\\u007f\\u0085"',
    );
  });

  it('escapes bidi overrides and Unicode line separators, keeps other Unicode', () => {
    expect(formatLogLine(T, 'info', 'm', { name: 'abc\u202edcb\u2028x', ok: 'naïve-é' })).toBe(
      '2026-12-08T01:00:00.000Z info  m name="abc\\u202edcb\\u2028x" ok=naïve-é',
    );
  });

  it('quoted values parse back as JSON strings', () => {
    const raw = 'a\nb "c" \\ \u001b \u202e';
    const shown = escapeLogText(raw);
    expect(JSON.parse(shown)).toBe(raw);
  });

  it('cuts long values with a marker', () => {
    const long = 'k'.repeat(MAX_FIELD_CHARS + 44);
    expect(formatLogLine(T, 'info', 'm', { key: long })).toBe(`${T} info  m key="${'k'.repeat(MAX_FIELD_CHARS)}...(+44 chars)"`);
    // A surrogate pair is never split by the cut.
    const emoji = 'x'.repeat(MAX_FIELD_CHARS - 1) + '\u{1F600}';
    expect(escapeLogText(emoji)).toBe(`"${'x'.repeat(MAX_FIELD_CHARS - 1)}...(+2 chars)"`);
  });

  it('escapes field names and the message, redacts secret-named fields, skips undefined', () => {
    expect(formatLogLine(T, 'error', 'bad\nline', { 'k\n': 1, password: 'hunter2hunter2', chap_r: 'x', gone: undefined })).toBe(
      '2026-12-08T01:00:00.000Z error bad\\nline "k\\n"=1 password=[redacted] chap_r=[redacted]',
    );
  });

  it('escapes strings inside objects and errors', () => {
    expect(formatLogLine(T, 'info', 'm', { keys: ['A\n', 'B\u0085'], err: new Error('bad\u001b') })).toBe(
      '2026-12-08T01:00:00.000Z info  m keys=["A\\n","B\\u0085"] err="bad\\u001b"',
    );
  });

  it('the logger writes exactly one line per event, also in JSON mode', () => {
    const text = capture();
    text.log.info('iSCSI login failed', { initiator: 'a\nb\rc' });
    expect(text.lines()).toEqual(['2026-12-08T01:00:00.000Z info  iSCSI login failed initiator="a\\nb\\rc"']);

    const json = capture(true);
    json.log.warn('m', { initiator: 'a\n\u2028b', secret: 's', long: 'z'.repeat(300) });
    const lines = json.lines();
    expect(lines).toEqual([
      `{"time":"${T}","level":"warn","msg":"m","initiator":"a\\n\\u2028b","secret":"[redacted]","long":"${'z'.repeat(256)}...(+44 chars)"}`,
    ]);
    expect((JSON.parse(lines[0]) as { initiator: string }).initiator).toBe('a\n\u2028b');
  });
});
