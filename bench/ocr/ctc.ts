/**
 * PP-OCR recogniser output decoding (PaddleOCR's CTCLabelDecode): classes are ['blank', ...dictionary
 * lines, ' '], so 1 + 6623 + 1 = 6625 for ppocr_keys_v1.txt with use_space_char. Greedy decoding takes
 * the argmax per time step, merges repeats, then drops blanks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ocrAssetsDir } from './paths';

let cached: string[] | undefined;

/** The class list: index 0 is the CTC blank (''), then the dictionary, then the space character. */
export function recCharacters(): string[] {
  if (!cached) {
    const lines = fs.readFileSync(path.join(ocrAssetsDir(), 'ppocr_keys_v1.txt'), 'utf8').split(/\r?\n/);
    // The file may or may not end with a newline; an empty last entry is not a character.
    if (lines[lines.length - 1] === '') lines.pop();
    cached = ['', ...lines, ' '];
  }
  return cached;
}

export interface Decoded {
  text: string;
  /** Mean probability of the kept characters (PaddleOCR's score); 0 for an empty string. */
  score: number;
  /** Argmax class per time step (for comparing two models step by step). */
  classes: Int32Array;
}

/** Greedy CTC decoding of one sequence of `steps` x `classes` probabilities. */
export function ctcGreedy(probs: Float32Array, steps: number, classes: number, characters = recCharacters()): Decoded {
  if (characters.length !== classes) {
    throw new Error(`recogniser has ${classes} classes but the dictionary gives ${characters.length}`);
  }
  const arg = new Int32Array(steps);
  let text = '';
  let sum = 0;
  let kept = 0;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestP = -Infinity;
    const row = t * classes;
    for (let c = 0; c < classes; c++) {
      const p = probs[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    arg[t] = best;
    if (best !== 0 && (t === 0 || arg[t - 1] !== best)) {
      text += characters[best];
      sum += bestP;
      kept++;
    }
  }
  return { text, score: kept ? sum / kept : 0, classes: arg };
}

/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** Character error rate of `hypothesis` against `reference` (edits / reference length). */
export function characterErrorRate(reference: string, hypothesis: string): number {
  const n = [...reference].length;
  return n ? editDistance(reference, hypothesis) / n : hypothesis.length ? 1 : 0;
}
