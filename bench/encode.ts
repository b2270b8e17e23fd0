/**
 * What the fidelity budget pays per measurement on a large layer: encoding a whole layer at one codec
 * setting with its values (as the sensitivity step, every checkpoint and the final apply do), on the
 * shape of VGG-16's fc1 (rows of 25088 weights; fewer rows than its 4096 unless asked). The row sort
 * that the palette fits start from is timed apart, native (native/quantize.cc) against the TypeScript
 * reference (TypedArray sort), in the same process, alternated.
 *
 *   npm run bench:encode [-- --rows 1024 --runs 3]
 */
import { sortRows, sortRowsReference } from '../lib/kernels/quantize';
import { native } from '../lib/binding';
import { encodeLayer } from '../lib/passes/codecs/encode';
import { candidateSettings, settingName } from '../lib/passes/codecs/settings';
import { Rng } from '../lib/rng';
import { timeInterleaved } from '../lib/timing';
import { checkArgs, loadLine, machineLine, median, numberArg, table, writeResult } from './machine';

const FAN_IN = 25088;

async function main(): Promise<void> {
  checkArgs('encode', { values: { rows: 'N', runs: 'N' } });
  const rows = numberArg('rows', 1024);
  const runs = numberArg('runs', 3);
  const weights = new Rng(52).normals(rows * FAN_IN, Math.sqrt(2 / FAN_IN));
  const grid = { dims: [rows, FAN_IN], neuronAxes: [0] };
  const out = { sorted: new Float32Array(weights.length), distinct: new Uint32Array(rows) };

  const sorts: (() => Promise<void>)[] = [async () => sortRowsReference(weights, FAN_IN, out.sorted, out.distinct)];
  if (native()) sorts.push(async () => sortRows(weights, FAN_IN, out.sorted, out.distinct));
  const [reference, nativeSort] = (await timeInterleaved(sorts, runs, { warmup: 1 })).map(median);
  process.stderr.write(`  sort: reference ${reference.toFixed(0)} ms, native ${nativeSort?.toFixed(0) ?? '-'} ms\n`);

  const encodes: { setting: string; ms: number }[] = [];
  for (const setting of candidateSettings(FAN_IN, true)) {
    const [times] = await timeInterleaved([() => encodeLayer({ layer: 'fc1', weights, grid, dataType: 1, settings: [setting], values: true })], runs);
    encodes.push({ setting: settingName(setting), ms: median(times) });
    process.stderr.write(`  encode ${settingName(setting)}: ${median(times).toFixed(0)} ms\n`);
  }
  const mw = (ms: number) => ((rows * FAN_IN) / ms / 1e3).toFixed(1);
  console.log(`# Encoding a layer of ${rows} rows of ${FAN_IN} weights (VGG-16's fc1 has 4096), values included\n`);
  console.log(`${machineLine()}; ${loadLine()}; median of ${runs}\n`);
  console.log(
    table(
      ['row sort', 'time (ms)', 'M weights/s', 'vs TS'],
      [
        ['TS reference (TypedArray sort)', reference.toFixed(0), mw(reference), '1.0×'],
        ...(nativeSort === undefined ? [] : [['native radix sort', nativeSort.toFixed(0), mw(nativeSort), `${(reference / nativeSort).toFixed(1)}×`]]),
      ],
    ),
  );
  console.log();
  console.log(table(['setting', 'encode with values (ms)', 'M weights/s'], encodes.map((e) => [e.setting, e.ms.toFixed(0), mw(e.ms)])));
  writeResult('encode', { rows, fanIn: FAN_IN, runs, sort: { referenceMs: reference, nativeMs: nativeSort ?? null }, encodes });
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
