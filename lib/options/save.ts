/** Options of saveModel(). */
import * as path from 'node:path';

import { RedppError } from '../errors';
import { integer, oneOf, userOptions } from './check';

export type ExternalDataMode = 'auto' | 'always' | 'never';

export interface SaveOptions {
  /**
   * Where tensor data goes. 'auto' (default): tensors that were external when the model was read stay
   * external (changed or not), and the largest tensors move out too if the protobuf would exceed the
   * limit. 'always': every tensor of at least externalDataThreshold bytes goes out. 'never': all inline
   * (MODEL_TOO_LARGE past the limit).
   */
  externalData?: ExternalDataMode;
  /** With 'always', tensors smaller than this stay inline. Default 1024. */
  externalDataThreshold?: number;
  /** External-data file name, relative to the model's directory. Default: '<model file name>.data'. */
  externalDataFile?: string;
  /** Largest protobuf to write; default and maximum 2 GiB - 1. Lower it to exercise external data. */
  maxProtobufBytes?: number;
}

export type ResolvedSaveOptions = Required<Omit<SaveOptions, 'externalDataFile'>> & Pick<SaveOptions, 'externalDataFile'>;

/** A protobuf message cannot exceed 2 GiB; larger models must keep weights in external data. */
export const MAX_PROTOBUF_BYTES = 2 ** 31 - 1;

export const SAVE_DEFAULTS: ResolvedSaveOptions = Object.freeze({ externalData: 'auto', externalDataThreshold: 1024, maxProtobufBytes: MAX_PROTOBUF_BYTES });

export function resolveSaveOptions(options?: SaveOptions): ResolvedSaveOptions {
  const o = { ...SAVE_DEFAULTS, ...userOptions(options, ['externalData', 'externalDataThreshold', 'externalDataFile', 'maxProtobufBytes']) };
  oneOf('options.externalData', ['auto', 'always', 'never'] as const, o.externalData);
  integer('options.externalDataThreshold', o.externalDataThreshold, 0);
  integer('options.maxProtobufBytes', o.maxProtobufBytes, 1, MAX_PROTOBUF_BYTES);
  const file = o.externalDataFile;
  if (file !== undefined && (typeof file !== 'string' || file === '' || path.isAbsolute(file) || path.normalize(file).split(path.sep).includes('..'))) {
    throw new RedppError('INVALID_OPTION', `options.externalDataFile must be a relative path inside the model's directory`);
  }
  return o;
}
