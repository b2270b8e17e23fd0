/**
 * The defaults (the fidelity budget at its default deviation) must keep each PP-OCRv4 model doing its
 * job on real (rendered) text: the detector's binarised map (0.3) keeps IoU >= 0.98 on every page, the
 * recogniser reads the same strings, the direction classifier keeps every argmax.
 */
import t from 'tap';

import { evaluateOcrFidelity, ocrModelPath, type OcrKind } from '../bench/ocr';
import { encodeModel } from '../lib/model/write';
import { prune } from '../lib/prune';

const INPUT_SHAPES: Record<OcrKind, number[]> = { det: [1, 3, 640, 640], rec: [1, 3, 48, 320], cls: [1, 3, 48, 192] };

for (const kind of ['det', 'rec', 'cls'] as const) {
  t.test(`default prune keeps PP-OCRv4 ${kind} fidelity`, async (t) => {
    const { model, report } = await prune(ocrModelPath(kind), { inputShapes: { x: INPUT_SHAPES[kind] } });
    t.ok(report.layers.some((l) => l.codec && l.codec.codec !== 'dense'), 'some layers are coded');
    t.ok(report.budget!.measured <= report.budget!.maxDeviation!, `deviation ${report.budget!.measured} within ${report.budget!.maxDeviation}`);
    const r = await evaluateOcrFidelity(kind, ocrModelPath(kind), encodeModel(model), { latency: false });
    t.ok(r.pass, `${kind}: ${r.criterion}`);
    if (r.kind === 'det') t.ok(r.minIoU >= 0.98, `det min IoU ${r.minIoU.toFixed(4)}`);
    if (r.kind === 'rec') t.equal(r.agreement, 1, 'rec reads every string the same');
    if (r.kind === 'cls') t.equal(r.agreement, 1, 'cls keeps every argmax');
  });
}
