/**
 * What a layer's export costs in the file, before it is written: the same chain builders as the pack
 * pass, on a site that only counts bytes (site.ts), fed the sizes an encoding reported (encode.ts).
 */
import type { NeuronLayout } from '../../layers';
import { DataType } from '../../model/dtype';
import { elementCount } from '../../model/tensor';
import { groupGrid, tablesOf, type ExportSize } from './encode';
import { addHalf } from './float16';
import { wordsTensor } from './indices';
import { addPalette } from './palette';
import type { CodecSetting } from './settings';
import { measuringSite } from './site';
import { addUniform } from './uniform';
import { wordCount } from './words';

/** Bytes of the layer's weights in the file at `setting`, given what its encoding reported; the dense tensor's when no form is smaller. */
export function exportBytes(layout: NeuronLayout, setting: CodecSetting, size: ExportSize, opset: number, constantNodes: boolean): number {
  const { tensor } = layout;
  const dense = tensor.size * tensor.data.BYTES_PER_ELEMENT;
  if (size.form === 'dense' || opset < 7) return dense;
  const site = measuringSite(opset, constantNodes);
  const dims = [...tensor.dims];
  const count = elementCount(dims);
  const bytes = (n: number) => ({ byteLength: n });
  const grid = groupGrid(layout.grid, setting);
  const tableBytes = tablesOf(setting, tensor.dataType) === 'float16' ? 2 : 4;
  if (size.form === 'half') addHalf({ half: bytes(2 * count), dims }, site, layout.value);
  else if (size.form === 'uniform') {
    const words = wordsTensor(size.format, grid);
    addUniform(
      {
        dataType: tensor.dataType,
        format: size.format,
        words: bytes(words.dims.length === 2 ? wordCount(size.format, count) * size.format.bytes : count * size.format.bytes),
        zeroPoint: bytes(size.groups * (size.format.bits > 8 ? 2 : 1)),
        scale: bytes(size.groups * tableBytes),
        scaleType: tableBytes === 2 ? DataType.FLOAT16 : DataType.FLOAT,
        dims,
        grid,
      },
      site,
      layout.value,
    );
  } else {
    const words = wordsTensor(size.format, grid);
    addPalette(
      {
        dataType: tensor.dataType,
        codebookType: tableBytes === 2 ? DataType.FLOAT16 : tensor.dataType,
        codebook: bytes(size.entries * (tableBytes === 2 ? 2 : tensor.data.BYTES_PER_ELEMENT)),
        offsets: bytes(size.groups * 4),
        format: size.format,
        words: bytes(words.dims.length === 2 ? wordCount(size.format, count) * size.format.bytes : count * size.format.bytes),
        dims,
        grid,
      },
      site,
      layout.value,
    );
  }
  return Math.min(dense, site.bytes);
}
