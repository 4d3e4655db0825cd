/**
 * The framing of a worker's byte channels (rows on stdin, results on the result channel), in one
 * place: `protocol.schema.json` carries it as `framing` (see schema.ts), and the Python runner
 * reads it from there, so both sides frame with the same constants.
 */
export const FRAMING = {
  /** A batch frame is a length prefix of this many bytes, big-endian, then the body. */
  lengthPrefixBytes: 4,
  /** Largest frame accepted; a bigger length means the stream is not a frame stream. */
  maxFrameBytes: 256 * 1024 * 1024,
  /** Rows per JSON frame the Spark runner sends. */
  sparkRowBatch: 1024,
  /**
   * How rows may reach a worker (`SPS_ROW_FORMAT`): batch frames of msgpack or JSON arrays, or
   * an Arrow IPC stream (one or more streams back to back, each a schema message, record batch
   * messages and the end-of-stream marker).
   */
  rowFormats: ['msgpack', 'json', 'arrow'],
  /** How result records may leave a worker (`SPS_RESULT_FORMAT`). */
  resultFormats: ['msgpack', 'json'],
  /** The Arrow IPC end-of-stream marker (continuation token, then a zero length), as hex. */
  arrowEndOfStream: 'ffffffff00000000',
  /**
   * A result frame whose body starts with these bytes (Arrow's continuation token, which no JSON
   * or msgpack array starts with) is an Arrow IPC stream: part of a result with a schema.
   */
  arrowResultPrefix: 'ffffffff',
} as const;

/** How rows reach a worker. */
export type RowFormat = (typeof FRAMING.rowFormats)[number];
