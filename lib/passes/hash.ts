/**
 * The hash pass (RED++ step 1, the only lossy step): every layer with constant float weights is hashed
 * per output neuron by the native kernel, one task per layer (tasks.ts).
 *
 * Layer-adaptive: a neuron with a small fan-in (depthwise convs, the first conv) has few weights, so
 * replacing each by its interval's representative moves its output far more than a wide neuron's;
 * measured on PP-OCRv4 (README, "What it buys"), such layers dominate the damage. They are protected:
 * left as they are below `minFanIn`, or hashed with their own beta through `layerBeta`.
 */
import { warnFallback } from '../binding';
import type { Layer, NeuronLayout } from '../layers';
import { dataTypeName, isFloatType } from '../model/dtype';
import type { Model } from '../model/model';
import type { Tensor } from '../model/tensor';
import type { HashPassOptions } from '../options';
import { inputSplitCounts } from './input-splitting';
import type { LayerPlan } from './layer-records';
import { layoutsOf, matchesSkip, newReport, type Pass, type PassReport } from './pass';
import { inProcess, type HashTask, type TaskRunner } from './tasks';

export interface HashProgress {
  done: number;
  total: number;
  layer: string;
}

/** The hash pass on `runner` (default: this thread); `onLayer` reports each finished layer (for progress bars). */
export function hashPass(options: HashPassOptions, runner: TaskRunner = inProcess, onLayer?: (p: HashProgress) => void): Pass {
  return {
    name: 'hash',
    exact: false,
    async run(model: Model, plan: LayerPlan): Promise<PassReport> {
      const report = newReport('hash');
      const jobs = planLayers(model, options, report, plan);
      // Largest first: the pool then ends with small tasks and no thread idles behind one big layer.
      // A layer of more than an eighth of the weights is hashed on all the runner's threads besides
      // (VGG-16's fc1, three quarters of them, kept one thread busy long after the rest were done).
      const bySize = [...jobs].sort((a, b) => b.layout.tensor.size - a.layout.tensor.size);
      const large = jobs.reduce((a, j) => a + j.layout.tensor.size, 0) / 8;
      let done = 0;
      let weights = 0;
      await Promise.all(
        bySize.map(async (job) => {
          const n = await hashLayer(job, options, runner, plan, job.layout.tensor.size > large ? runner.threads : 1);
          weights += n;
          onLayer?.({ done: ++done, total: jobs.length, layer: job.layer.name });
        }),
      );
      for (const { layer, layout } of jobs) {
        report.changes.push({ node: layer.name, action: `hashed ${layout.neurons} neurons of ${layout.fanIn} weights` });
        if (plan.record(layer).hash!.backend === 'reference') warnFallback();
      }
      report.changed = jobs.length > 0;
      report.stats = { layers: jobs.length, skipped: report.skipped.length, weights };
      return report;
    },
  };
}

interface Job {
  layer: Layer;
  layout: NeuronLayout;
  beta: number;
}

function planLayers(model: Model, o: HashPassOptions, report: PassReport, plan: LayerPlan): Job[] {
  const jobs: Job[] = [];
  const claimed = new Map<Tensor, string>();
  for (const { layer, layout, skip } of layoutsOf(model, report, plan)) {
    const name = layer.name;
    const beta = Object.hasOwn(o.layerBeta, name) ? o.layerBeta[name] : o.beta;
    const owner = claimed.get(layout.tensor);
    if (owner) skip(`shares its weights with '${owner}', hashed there`);
    else if (!isFloatType(layout.tensor.dataType)) skip(`${dataTypeName(layout.tensor.dataType)} weights are left as they are`);
    else if (matchesSkip(o.skip, name)) skip('matches options.skip');
    else if (beta === 0) skip('beta is 0 for this layer');
    else if (layout.fanIn < o.minFanIn && !Object.hasOwn(o.layerBeta, name)) {
      skip(`fan-in ${layout.fanIn} < minFanIn ${o.minFanIn} (protected)`);
    } else {
      claimed.set(layout.tensor, name);
      jobs.push({ layer, layout, beta });
    }
  }
  return jobs;
}

/** Hashes one layer and fills its record; returns its number of weights. */
async function hashLayer({ layer, layout, beta }: Job, o: HashPassOptions, runner: TaskRunner, plan: LayerPlan, threads: number): Promise<number> {
  const { tensor, neurons, fanIn, grid } = layout;
  const r = await runner.hash({ layer: layer.name, data: handedOver(tensor), dataType: tensor.dataType, grid, params: { beta, center: o.center }, threads });
  tensor.setData(r.data);

  let errSq = 0;
  for (let g = 0; g < neurons; g++) errSq += r.rmsError[g] * r.rmsError[g] * fanIn;
  const n = neurons * fanIn;
  const rms = Math.sqrt(errSq / n);
  const weightRms = Math.sqrt(r.sumSq / n);
  const record = plan.record(layer);
  record.codec = { codec: 'hash', beta };
  record.weightError = { rms, relative: weightRms > 0 ? rms / weightRms : 0 };
  record.hash = { backend: r.backend };
  plan.setInputSplitting(record, inputSplitCounts(fanIn, r.distinct, r.zeros));
  record.timingsMs.hash = Math.round(r.ms * 10) / 10;
  delete record.skipped;
  return n;
}

/**
 * The tensor's array for the runner to hash in place: its own, where no other tensor and no buffer of
 * the caller's shares it — in shared memory (a model read from a file) the worker hashes it where it
 * is, in an ArrayBuffer of its own it moves to the worker and back — else a copy. Converting and
 * gathering rows happen in the runner (tasks.ts), so the main thread does no per-weight work.
 */
function handedOver(tensor: Tensor): HashTask['data'] {
  if (tensor.editableInPlace) {
    const d = tensor.mutableData() as HashTask['data'];
    if (d.buffer instanceof SharedArrayBuffer || (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength)) return d;
  }
  return tensor.data.slice() as HashTask['data'];
}
