/**
 * A float32 ONNX model converted to float16 end to end, for measuring what redpp does to fp16 weights on
 * real models: every float32 constant, graph input and output, value type and Cast target becomes
 * float16, except the inputs that ONNX requires in float32 (Resize's roi and scales). onnxruntime runs
 * the result (on CPU, casting around the ops it has no fp16 kernel for).
 */
import { DataType, fromNumbers } from '../lib/model/dtype';
import type { Model } from '../lib/model/model';
import type { ValueInfoProto } from '../lib/model/proto';

/** Inputs that stay float32 whatever the data type: op type -> input indices. */
const FLOAT32_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

/** Converts `model` in place and returns it. */
export function toFloat16(model: Model): Model {
  const graph = model.graph;
  const keep = new Set<string>();
  for (const n of graph.nodes) for (const i of FLOAT32_INPUTS[n.opType] ?? []) if (n.inputs[i]) keep.add(n.inputs[i]);
  const constants = [...graph.initializers.keys(), ...graph.nodes.filter((n) => n.opType === 'Constant').map((n) => n.outputs[0])];
  for (const name of constants) {
    const t = graph.constant(name);
    if (t && t.dataType === DataType.FLOAT && !keep.has(name)) t.setData(fromNumbers(t.toFloat32(), DataType.FLOAT16), t.dims, DataType.FLOAT16);
  }
  for (const n of graph.nodes) if (n.opType === 'Cast' && n.attrInt('to') === DataType.FLOAT) n.setAttribute('to', DataType.FLOAT16);
  const retype = (v: ValueInfoProto) => {
    const tensor = v.type?.tensor_type;
    if (tensor && tensor.elem_type === DataType.FLOAT && !keep.has(v.name)) tensor.elem_type = DataType.FLOAT16;
  };
  for (const list of [graph.proto.input, graph.proto.output, graph.proto.value_info]) list.forEach(retype);
  return model;
}
