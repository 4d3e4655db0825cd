import type { Measurement, SectionResult, TargetCheck } from './types.js';

/** Formats a number for a table: 3 significant digits below 100, thousands separators above. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toLocaleString('en-US');
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** A plain-text (and valid markdown) table. */
export function markdownTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The table of one section's measurements (median, p99, n), then skipped parts and notes. */
export function sectionTable(s: SectionResult): string {
  const rows = s.rows.map((m: Measurement) => [m.name, fmt(m.median), fmt(m.p99), m.unit, String(m.n), m.note ?? '']);
  const out = [`### ${s.title}`, '', markdownTable(['measurement', 'median', 'p99', 'unit', 'n', 'note'], rows)];
  for (const k of s.skipped) out.push(`- skipped: ${k.name} — ${k.reason}`);
  for (const n of s.notes) out.push(`- ${n}`);
  return out.join('\n');
}

/** The targets summary: target, measured, met. */
export function targetsTable(targets: TargetCheck[]): string {
  return markdownTable(
    ['target', 'measured', 'met?'],
    targets.map((t) => [t.target, t.measured, t.met === null ? 'not measured' : t.met ? 'yes' : 'NO']),
  );
}
