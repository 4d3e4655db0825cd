import type { SectionResult } from './types.js';
import { fmt } from './table.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A bar chart of medians (with a p99 tick), one panel per benchmark section. Each panel has its own
 * scale, logarithmic when its values span more than 50×, so microseconds and Spark's hundreds of
 * milliseconds fit on one chart.
 */
export function renderChart(sections: SectionResult[], title: string): string {
  const width = 1100;
  const labelW = 430;
  const barMax = width - labelW - 150;
  const rowH = 18;
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="10" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`);
  for (const s of sections) {
    const rows = s.rows.filter((r) => Number.isFinite(r.median) && r.median > 0);
    if (rows.length === 0) continue;
    const hi = Math.max(...rows.map((r) => Math.max(r.median, Number.isFinite(r.p99) ? r.p99 : 0)));
    const lo = Math.min(...rows.map((r) => r.median));
    const log = hi / lo > 50;
    const floor = log ? lo / 2 : 0;
    const scale = (v: number): number => (log ? (Math.log10(v / floor) / Math.log10(hi / floor)) * barMax : (v / hi) * barMax);
    y += 14;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(s.title)}${log ? ' (log scale)' : ''}</text>`);
    y += 8;
    for (const r of rows) {
      const w = Math.max(1, scale(r.median));
      const color = r.name.startsWith('Spark') || r.name.includes('spark') ? '#e4572e' : r.name.includes('node:http') ? '#999' : '#2e86ab';
      parts.push(`<text x="${labelW - 6}" y="${y + 13}" font-size="11" text-anchor="end">${esc(r.name)}</text>`);
      parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`);
      if (Number.isFinite(r.p99) && r.p99 > 0) {
        const px = labelW + Math.max(1, scale(r.p99));
        parts.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${y + 2}" y2="${y + rowH - 2}" stroke="#333" stroke-width="1.5"/>`);
      }
      parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 13}" font-size="11">${esc(`${fmt(r.median)} ${r.unit}`)}</text>`);
      y += rowH;
    }
    y += 6;
  }
  y += 10;
  parts.push(`<text x="10" y="${y}" font-size="10" fill="#555">bars: median; tick: p99. Blue: partition servers; red: Spark; grey: node:http baseline.</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
