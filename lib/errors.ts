/**
 * Every user-facing failure is a RedppError with a stable `code`, so callers (and the CLI) can branch
 * on the code and print the message as it is: one line, printable, whatever bytes of a file (names,
 * paths) it quotes.
 */
export type RedppErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_ARGUMENT'
  | 'NON_FINITE_WEIGHT'
  | 'CUDA_UNAVAILABLE'
  | 'NATIVE_UNAVAILABLE'
  | 'CANCELLED' // stopped by the caller's AbortSignal (options.signal; a service job cancelled)
  | 'TIMED_OUT' // stopped by a time limit (a service job's)
  // Model I/O (lib/model/)
  | 'NOT_ONNX' // the bytes are not an ONNX ModelProto
  | 'TRUNCATED_MODEL' // an ONNX file that ends mid-message
  | 'INVALID_MODEL' // decodes, but contradicts the spec (no graph, tensor size != dims, bad external-data entry)
  | 'MISSING_VALUE' // a node or graph output names a value that nothing defines
  | 'UNSUPPORTED_DTYPE' // a tensor element type redpp cannot decode
  | 'EXTERNAL_DATA_MISSING' // an external-data file that is absent or cannot be located
  | 'MODEL_TOO_LARGE' // a protobuf over 2 GiB that external data cannot bring under the limit
  | 'IO_ERROR' // reading or writing a file failed
  // Validation (lib/validate/)
  | 'INFERENCE_FAILED' // onnxruntime could not load or run a model
  | 'INFERENCE_UNAVAILABLE' // onnxruntime-node (an optional peer dependency) is not installed
  // The service (lib/serve/)
  | 'UNAUTHORIZED' // no bearer token, or not the server's
  | 'UPLOAD_TOO_LARGE' // a model over the server's --max-upload
  | 'QUEUE_FULL' // the server's queue holds --max-queue jobs already
  | 'JOB_NOT_FOUND' // no job has this id
  | 'JOB_NOT_DONE' // the job's model or report was asked for before it was done
  | 'QUEUE_UNAVAILABLE'; // the Redis server of --queue cannot be reached

export class RedppError extends Error {
  readonly code: RedppErrorCode;

  constructor(code: RedppErrorCode, message: string, options?: { cause?: unknown }) {
    super(printable(message), options);
    this.name = 'RedppError';
    this.code = code;
  }
}

/**
 * The text with control characters (C0, DEL, C1: a terminal would act on them) and lone surrogates
 * written as escapes, so that a hostile name in a model cannot move the cursor or split the line.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) =>
    c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The one factory for bad options: names the option, what was expected and what was given. */
export function invalidOption(name: string, expected: string, actual: unknown): RedppError {
  return new RedppError('INVALID_OPTION', `Expected ${expected} for ${name} but received ${describe(actual)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value === null) return 'null';
  if (Array.isArray(value) && value.length <= 16 && value.every((v) => typeof v === 'number')) return `[${value.join(', ')}]`;
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `${String(value)} of type ${typeof value}`;
}

/**
 * The error of work stopped by an AbortSignal: RedppError CANCELLED, or TIMED_OUT when the signal's
 * reason is a timeout (AbortSignal.timeout()); undefined while the signal is not aborted.
 */
export function cancellation(signal: AbortSignal | undefined): RedppError | undefined {
  if (!signal?.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof RedppError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') return new RedppError('TIMED_OUT', 'stopped: the time limit passed');
  return new RedppError('CANCELLED', `stopped: ${reason instanceof Error ? reason.message : String(reason ?? 'cancelled')}`);
}

/** Throws cancellation(signal), if any. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  const e = cancellation(signal);
  if (e) throw e;
}

/**
 * A failure as redpp shows it (the CLI's line, a job's error, an HTTP error): a RedppError's code and
 * message; anything else is a bug in redpp, INTERNAL, with the first line of what it said.
 */
export function failureOf(e: unknown): { code: string; message: string } {
  if (e instanceof RedppError) return { code: e.code, message: e.message };
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { code: 'INTERNAL', message: `${printable(what.split('\n')[0])} (a bug in redpp: please report it)` };
}
