/**
 * Pruned files stay byte for byte what they were: every case below is pruned and the SHA-256 of the
 * file it gives is held to test/fixtures/golden-prune.json, recorded before the pipeline was
 * restructured. A change of output is then a decision (rerun with REDPP_UPDATE_GOLDEN=1 and say why in
 * the commit), never an accident of a refactoring. REDPP_GOLDEN_LARGE=1 adds VGG-16 (528 MiB).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { toFloat16 } from '../bench/fp16';
import { mobilenetV2Model, resnet50Model, vgg16Model } from '../bench/models';
import { ocrModelPath } from '../bench/ocr/paths';
import { loadModel } from '../lib/load';
import type { Model } from '../lib/model';
import { encodeModel } from '../lib/model/write';
import type { PruneOptions } from '../lib/options';
import { prune } from '../lib/prune';

const FIXTURE = path.join(__dirname, 'fixtures', 'golden-prune.json');
const UPDATE = process.env.REDPP_UPDATE_GOLDEN === '1';
const LARGE = process.env.REDPP_GOLDEN_LARGE === '1';

const OCR_SHAPES = { det: [1, 3, 640, 640], rec: [1, 3, 48, 320], cls: [1, 3, 48, 192] } as const;

/** RED++ as it was before the budget became the default: beta 0.05, every other option as it was then. */
const RED: PruneOptions = { beta: 0.05, pack: false };

interface Case {
  name: string;
  model: () => Promise<Model>;
  options: PruneOptions;
  large?: boolean;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const kind of ['det', 'rec', 'cls'] as const) {
    const inputShapes = { x: [...OCR_SHAPES[kind]] };
    for (const dtype of ['float32', 'float16'] as const) {
      const model = async () => {
        const m = await loadModel(ocrModelPath(kind));
        return dtype === 'float16' ? toFloat16(m) : m;
      };
      out.push({ name: `${kind} ${dtype} defaults`, model, options: { inputShapes, ...RED } });
      out.push({ name: `${kind} ${dtype} pack`, model, options: { inputShapes, ...RED, pack: true } });
    }
    const model = () => loadModel(ocrModelPath(kind));
    // Every layer hashed, hard, with lossy merging: exercises merge edits and multi-index words.
    out.push({ name: `${kind} float32 beta 0.2 minFanIn 0 epsilon 0.05 pack`, model, options: { inputShapes, ...RED, beta: 0.2, minFanIn: 0, epsilon: 0.05, pack: true } });
  }
  // The kernel-level rewrite on every eligible conv.
  out.push({ name: 'cls float32 force split', model: () => loadModel(ocrModelPath('cls')), options: { inputShapes: { x: [1, 3, 48, 192] }, ...RED, kernelSplit: 'force' } });
  for (const [name, build] of [
    ['resnet50', () => resnet50Model()],
    ['mobilenetv2', () => mobilenetV2Model()],
  ] as const) {
    out.push({ name: `${name} defaults`, model: async () => build(), options: { ...RED } });
    out.push({ name: `${name} pack`, model: async () => build(), options: { ...RED, pack: true } });
  }
  out.push({ name: 'vgg16 pack', model: async () => vgg16Model(), options: { ...RED, pack: true }, large: true });
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const recorded: Record<string, string> = fs.existsSync(FIXTURE) ? JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) : {};
const seen: Record<string, string> = {};

for (const c of cases()) {
  if (c.large && !LARGE) continue;
  t.test(c.name, async (t) => {
    const { model } = await prune(await c.model(), { threads: 2, ...c.options });
    const digest = sha(encodeModel(model));
    seen[c.name] = digest;
    if (UPDATE) t.pass(`recorded ${digest}`);
    else t.equal(digest, recorded[c.name], 'the pruned file is byte-identical to the recorded one');
  });
}

if (UPDATE) {
  t.teardown(() => {
    const merged = { ...recorded, ...seen };
    fs.writeFileSync(FIXTURE, `${JSON.stringify(Object.fromEntries(Object.entries(merged).sort()), null, 2)}\n`);
  });
}
