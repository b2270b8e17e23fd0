/**
 * Every user-facing failure is a RedppError with a stable `code`, so callers (and the CLI) can branch
 * on the code and print the message as it is.
 */
export type RedppErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_ARGUMENT'
  | 'NON_FINITE_WEIGHT'
  | 'CUDA_UNAVAILABLE'
  | 'NATIVE_UNAVAILABLE';

export class RedppError extends Error {
  readonly code: RedppErrorCode;

  constructor(code: RedppErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedppError';
    this.code = code;
  }
}

/** The one factory for bad options: names the option, what was expected and what was given. */
export function invalidOption(name: string, expected: string, actual: unknown): RedppError {
  return new RedppError('INVALID_OPTION', `Expected ${expected} for ${name} but received ${describe(actual)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `${String(value)} of type ${typeof value}`;
}
