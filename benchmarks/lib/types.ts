import type { Summary } from './stats.js';

/** One measured quantity: its samples' summary and unit. Lower is better unless `higherIsBetter`. */
export interface Measurement extends Summary {
  name: string;
  unit: string;
  higherIsBetter?: boolean;
  note?: string;
}

/** A target of the issue checked against a measurement; `met` is null when it could not be measured. */
export interface TargetCheck {
  id: string;
  target: string;
  measured: string;
  met: boolean | null;
}

/** What one benchmark module produces. */
export interface SectionResult {
  id: string;
  title: string;
  settings: Record<string, unknown>;
  rows: Measurement[];
  skipped: { name: string; reason: string }[];
  notes: string[];
  targets: TargetCheck[];
  durationMs?: number;
}

/** Settings every benchmark receives from the runner. */
export interface BenchContext {
  quick: boolean;
  /** With `quick`: run the Spark cases too, at quick sizes (`--spark`); they are skipped otherwise. */
  sparkInQuick?: boolean;
  /** Folder for results (and profiles). */
  outDir: string;
  /** Extra environment for worker processes (e.g. NODE_OPTIONS=--cpu-prof). */
  workerEnv: Record<string, string>;
  /** Progress lines. */
  log(line: string): void;
}

/** A benchmark module's entry. */
export type Benchmark = (ctx: BenchContext) => Promise<SectionResult>;

/** Thrown by a smoke run's section once it holds its first figure; the runner keeps the section as it is. */
export class EnoughForSmoke extends Error {
  constructor(readonly section: SectionResult) {
    super('smoke run: one figure is enough');
  }
}

let smoke = false;

/**
 * Smoke runs (`--smoke`, for the test suite) stop each section at its first figure: adding it
 * throws {@link EnoughForSmoke}, which unwinds the section (its clusters stop in their `finally`).
 */
export function setSmoke(on: boolean): void {
  smoke = on;
}

/** True in a smoke run: a section whose first figure comes only at its end keeps its loops to one pass. */
export function isSmoke(): boolean {
  return smoke;
}

/** Creates an empty section to fill. */
export function section(id: string, title: string, settings: Record<string, unknown>): SectionResult {
  const s: SectionResult = { id, title, settings, rows: [], skipped: [], notes: [], targets: [] };
  if (smoke) {
    s.rows.push = (...items: Measurement[]): number => {
      Array.prototype.push.apply(s.rows, items);
      throw new EnoughForSmoke(s);
    };
  }
  return s;
}

/** A one-line reason from an error (for skipped rows): its first line, plus a Python/Java error line if the message holds a traceback. */
export function reasonOf(err: unknown): string {
  const lines = String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const cause = [...lines].reverse().find((l, i) => i < lines.length - 1 && /Error:|Exception:/.test(l));
  return [lines[0] ?? 'unknown error', cause].filter(Boolean).join(' … ').slice(0, 400);
}
