import { Bool, Float64, Int32, Int64, Table, TimestampMillisecond, Utf8, vectorFromArray, type RecordBatch } from 'apache-arrow';
import { PartitionServer, type PartitionContext, type Rows } from '../../src/index.js';

/** How the probe reads its rows: as objects row by row, or as Arrow batches kept or discarded. */
export interface ArrowProbeConfig {
  read: 'rows' | 'arrow' | 'discard';
  /** `arrow`: the result is an Arrow table (a result with a schema) of one row per row read. */
  result?: 'arrow';
}

/** What the probe saw of its partition's Arrow batches. */
export interface ArrowSummary {
  format: string;
  batches: number;
  rows: number;
  /** Per column: Arrow type, nullability, the class of the first batch's value buffer, and values as text. */
  columns: Record<string, { type: string; nullable: boolean; buffer: string; values: unknown[] }>;
  /** Bytes of the record batches' buffers, and the worker's RSS before reading and at its highest while reading. */
  bytes: number;
  rssBefore: number;
  rssPeak: number;
}

/** A value as Arrow's `Vector.get` gives it, made fit for a reply: BigInts as `<digits>n`, typed arrays as arrays, nested values as JSON. */
function text(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? `${x}n` : x));
  if (v !== null && typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  return v;
}

/** Test server for the Arrow row path: reports what the rows looked like, by endpoint. */
export default class ArrowProbe extends PartitionServer<Record<string, unknown>, ArrowProbeConfig> {
  private summary: ArrowSummary = { format: '', batches: 0, rows: 0, columns: {}, bytes: 0, rssBefore: 0, rssPeak: 0 };

  override async initPartition(rows: Rows<Record<string, unknown>>, ctx: PartitionContext<ArrowProbeConfig>): Promise<void> {
    const s = this.summary;
    s.format = rows.format;
    s.rssBefore = s.rssPeak = process.memoryUsage.rss();
    if (ctx.config!.read === 'rows') {
      for await (const row of rows) this.rows.push(row);
      return;
    }
    for await (const batch of rows.arrow()) {
      s.batches++;
      s.rows += batch.numRows;
      for (const child of batch.data.children) s.bytes += child.byteLength;
      if (ctx.config!.read === 'arrow') this.keep(batch);
      s.rssPeak = Math.max(s.rssPeak, process.memoryUsage.rss());
    }
  }

  private keep(batch: RecordBatch): void {
    for (const field of batch.schema.fields) {
      const vector = batch.getChild(field.name)!;
      const col = (this.summary.columns[field.name] ??= {
        type: String(field.type),
        nullable: field.nullable,
        buffer: (vector.data[0]?.values as object | undefined)?.constructor.name ?? 'none',
        values: [],
      });
      for (let i = 0; i < vector.length; i++) col.values.push(vector.isValid(i) ? text(vector.get(i)) : null);
    }
  }

  /** With `result: 'arrow'`: `{ partition: int, id: long, half: double, name: string, even: boolean, at: timestamp }` per row read. */
  override buildResult(ctx: PartitionContext<ArrowProbeConfig>) {
    if (ctx.config?.result !== 'arrow') return [];
    const ids = this.rows.map((r) => Number(r.id));
    return new Table({
      partition: vectorFromArray(
        ids.map(() => ctx.partition),
        new Int32(),
      ),
      id: vectorFromArray(
        ids.map((i) => BigInt(i)),
        new Int64(),
      ),
      half: vectorFromArray(
        ids.map((i) => i / 2),
        new Float64(),
      ),
      name: vectorFromArray(
        ids.map((i) => (i === 1 ? null : `n${i}`)),
        new Utf8(),
      ),
      even: vectorFromArray(
        ids.map((i) => i % 2 === 0),
        new Bool(),
      ),
      at: vectorFromArray(
        ids.map((i) => 1704164645000 + i),
        new TimestampMillisecond(),
      ),
    });
  }

  override endpoints() {
    return {
      rows: () => this.rows,
      summary: () => this.summary,
    };
  }
}
