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
  | 'INFERENCE_UNAVAILABLE'; // onnxruntime-node (an optional peer dependency) is not installed

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
