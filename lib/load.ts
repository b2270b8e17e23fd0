/**
 * loadModel() / decodeModel(): a model as redpp hands it to a user or a pass. The ONNX reader
 * (model/read.ts) gives the file as it is; here every weight that redpp stored in a form of its own (the
 * packed export's codebooks and index words) is read back as the plain tensor it stands for, so a
 * pruned model can be inspected, validated or pruned again like any other.
 */
import { readModel, readModelBytes, type LoadOptions } from './model/read';
import type { Model } from './model/model';
import { unpackModel } from './passes/codecs/read';

export type { LoadOptions };

/** Reads and checks a model from a file path or from the bytes of an .onnx file. */
export async function loadModel(source: string | Uint8Array, options: LoadOptions = {}): Promise<Model> {
  return unpackModel(await readModel(source, options));
}

/** loadModel() for bytes already in memory, synchronously (external data is read synchronously too). */
export function decodeModel(bytes: Uint8Array, options: LoadOptions = {}): Model {
  return unpackModel(readModelBytes(bytes, options));
}
