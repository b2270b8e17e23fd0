/**
 * How `redpp prune` scales with the number of nodes: chains of 10^5 to 10^6 Relu nodes (no weights:
 * everything measured is reading, analysis and writing the graph), through the CLI in a child process,
 * with wall time, peak RSS (VmHWM) and the time per node against the smallest chain's (1.0 is linear).
 * The target (issue: hostile input) is 10^6 nodes in ≤ 5 s and ≤ 1 GB.
 *
 *   npm run bench:large-graph [-- --nodes 100000,300000,1000000]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { onnxTypes } from '../lib/model/proto';
import { checkArgs, listArg, loadLine, machineLine, table, writeResult } from './machine';

/** The encoded chain x → Relu → … → Relu (n nodes), protobufjs-built: a 10^6-node Model is not needed here. */
function chain(n: number): Uint8Array {
  const T = onnxTypes();
  const node = Array.from({ length: n }, (_, i) => ({ op_type: 'Relu', name: `n${i}`, input: [i ? `v${i - 1}` : 'x'], output: [`v${i}`] }));
  const value = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }, { dim_value: 4 }] } } } });
  const model = T.Model.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'chain', node, input: [value('x')], output: [value(`v${n - 1}`)] } });
  return T.Model.encode(model).finish();
}

function main(): void {
  checkArgs('large-graph', { values: { nodes: 'N,N,...' } });
  const sizes = listArg('nodes', ['100000', '300000', '1000000']).map(Number);
  const cli = path.join(__dirname, '..', 'lib', 'command-line.js');
  const probe = `const { main } = require(${JSON.stringify(cli)});
    main(process.argv.slice(1)).then((code) => { const s = require('fs').readFileSync('/proc/self/status', 'utf8'); process.stderr.write('@@' + JSON.stringify({ code, hwmKb: Number(/VmHWM:\\s*(\\d+)/.exec(s)[1]) }) + '\\n'); });`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-large-graph-'));
  const rows: { nodes: number; fileBytes: number; wallMs: number; peakMiB: number; phases: Record<string, number> }[] = [];
  try {
    for (const n of sizes) {
      const file = path.join(dir, `chain-${n}.onnx`);
      fs.writeFileSync(file, chain(n));
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['-e', probe, 'prune', file, '-o', path.join(dir, 'out.onnx'), '--beta', '0.05', '--kernel-split', 'off', '--json'], {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
      });
      const wallMs = performance.now() - t0;
      const tail = /@@(.*)/.exec(r.stderr);
      if (r.status !== 0 || !tail) throw new Error(`redpp prune failed on ${n} nodes: ${r.stderr.slice(0, 500)}`);
      rows.push({ nodes: n, fileBytes: fs.statSync(file).size, wallMs, peakMiB: JSON.parse(tail[1]).hwmKb / 1024, phases: JSON.parse(r.stdout).timingsMs });
      process.stderr.write(`  ${n} nodes: ${(wallMs / 1000).toFixed(1)} s, peak ${rows[rows.length - 1].peakMiB.toFixed(0)} MiB\n`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const base = rows[0];
  const phases = ['load', 'merge', 'save'];
  console.log(`# redpp prune on long chains of nodes\n\n${machineLine()}; ${loadLine()}\n`);
  console.log(
    table(
      ['nodes', 'file', 'wall', 'peak RSS', 'time per node vs smallest', ...phases],
      rows.map((r) => [
        r.nodes.toLocaleString('en'),
        `${(r.fileBytes / 2 ** 20).toFixed(1)} MiB`,
        `${(r.wallMs / 1000).toFixed(1)} s`,
        `${r.peakMiB.toFixed(0)} MiB`,
        `${(r.wallMs / r.nodes / (base.wallMs / base.nodes)).toFixed(2)}×`,
        ...phases.map((p) => `${((r.phases[p] ?? 0) / 1000).toFixed(1)} s`),
      ]),
    ),
  );
  writeResult('large-graph', { load: os.loadavg(), rows });
}

main();
