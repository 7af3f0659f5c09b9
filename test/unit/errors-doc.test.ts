// The error codes cannot drift (issue 13, STYLE.md §8): the closed union in
// src/protocols/errors.ts, the tables of docs/errors.md and the codes the
// source uses are one list. A code thrown in src/ must be documented; a
// documented code must be in the union and used somewhere in src/.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLunkitErrorCode } from '../../src/protocols/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');
const ERRORS_TS = join(ROOT, 'src', 'protocols', 'errors.ts');

/** Codes ours by name that src/ only passes on from Node (a portal's bind error), never spells out. */
const PASSED_ON = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const stripComments = (text: string): string => text.replace(/\/\*[^]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

/**
 * The string literals of `export type LunkitErrorCode = ...;`, with the
 * named sub-unions it lists (`export type XErrorCode = ...;` in the same file)
 * expanded.
 */
function unionCodes(): string[] {
  const text = stripComments(readFileSync(ERRORS_TS, 'utf8'));
  const body = (name: string): string => {
    const m = new RegExp(`export type ${name} =([^;]*);`).exec(text);
    if (!m) throw new Error(`no ${name} union in src/protocols/errors.ts`);
    return m[1];
  };
  const expand = (src: string): string[] => [
    ...[...src.matchAll(/'([A-Z][A-Z0-9_]*)'/g)].map((x) => x[1]),
    ...[...src.matchAll(/\|\s*([A-Z]\w*ErrorCode)\b/g)].flatMap((x) => expand(body(x[1]))),
  ];
  return expand(body('LunkitErrorCode'));
}

/** The first-column codes of the tables under "## Codes by layer" in docs/errors.md, with their rows. */
function documentedRows(): Array<{ code: string; cells: string[] }> {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const start = doc.indexOf('\n## Codes by layer');
  if (start < 0) throw new Error('docs/errors.md has no "## Codes by layer" section');
  const next = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows: Array<{ code: string; cells: string[] }> = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|(.*)\|\s*$/.exec(line);
    if (m) rows.push({ code: m[1], cells: m[2].split('|').map((c) => c.trim()) });
  }
  return rows;
}

const files = sourceFiles(join(ROOT, 'src')).filter((f) => f !== ERRORS_TS);
const sources = files.map((f) => ({ file: relative(ROOT, f), text: stripComments(readFileSync(f, 'utf8')) }));

/** Codes src/ raises: every ERR_* literal, and the literal first argument of an error constructor (errno names). */
function thrownCodes(): Map<string, string> {
  const out = new Map<string, string>();
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/['"`](ERR_[A-Z0-9_]+)['"`]/g)) if (!out.has(m[1])) out.set(m[1], file);
    for (const m of text.matchAll(/\bnew\s+[A-Z]\w*Error\(\s*'([A-Z][A-Z0-9_]+)'/g)) if (!out.has(m[1])) out.set(m[1], file);
    for (const m of text.matchAll(/\bsuper\(\s*'([A-Z][A-Z0-9_]+)'/g)) if (!out.has(m[1])) out.set(m[1], file);
  }
  return out;
}

/** Every all-caps string literal of src/ (a code may be used through a variable, e.g. an errno map). */
function quotedNames(): Set<string> {
  const out = new Set<string>();
  for (const { text } of sources) for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9_]{2,})['"`]/g)) out.add(m[1]);
  return out;
}

describe('error codes: union, docs/errors.md and src/ agree', () => {
  const union = unionCodes();
  const rows = documentedRows();
  const documented = rows.map((r) => r.code);

  it('finds the lists it compares', () => {
    expect(union.length).toBeGreaterThan(50);
    expect(documented.length).toBeGreaterThan(50);
    expect(sources.length).toBeGreaterThan(30);
  });

  it('the union lists each code once and docs/errors.md has one line per code', () => {
    expect(union.filter((c, i) => union.indexOf(c) !== i)).toEqual([]);
    expect(documented.filter((c, i) => documented.indexOf(c) !== i)).toEqual([]);
  });

  it('docs/errors.md documents exactly the codes of the union', () => {
    expect([...documented].sort()).toEqual([...union].sort());
  });

  it('every documented line says who raises it, what it means and what to do', () => {
    for (const r of rows) {
      expect(r.cells.length, r.code).toBeGreaterThanOrEqual(3);
      for (const c of r.cells) expect(c.length, `${r.code}: an empty cell`).toBeGreaterThan(0);
    }
  });

  it('every code thrown in src/ is documented', () => {
    const undocumented = [...thrownCodes()].filter(([code]) => !documented.includes(code)).map(([code, file]) => `${code} (${file})`);
    expect(undocumented).toEqual([]);
  });

  it('every documented code is used somewhere in src/ (no dead codes)', () => {
    const used = quotedNames();
    expect(documented.filter((c) => !used.has(c) && !PASSED_ON.has(c))).toEqual([]);
  });

  it('isLunkitErrorCode knows exactly the union at run time', () => {
    for (const c of union) expect(isLunkitErrorCode(c), c).toBe(true);
    expect(isLunkitErrorCode('ENOENT')).toBe(false);
    expect(isLunkitErrorCode('ERR_NOT_A_CODE')).toBe(false);
    expect(isLunkitErrorCode(5)).toBe(false);
  });
});
