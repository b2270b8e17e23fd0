export { readModel, readModelBytes, MAX_PROTOBUF_BYTES, type LoadOptions } from './read';
export { saveModel, encodeModel, type SaveResult } from './write';
export type { SaveOptions, ExternalDataMode } from '../options/save';
export { Model, tensorSites, type TensorSite } from './model';
export { Graph, Node, makeAttribute, type NewNode, type AttributeValue } from './graph';
export { Tensor, elementCount } from './tensor';
export {
  DataType,
  dataTypeName,
  toFloat32,
  fromNumbers,
  float16BitsToNumber,
  numberToFloat16Bits,
  bfloat16BitsToNumber,
  numberToBfloat16Bits,
  type TensorData,
  type DataTypeName,
} from './dtype';
export type * from './proto';
export { inferShapes, SHAPE_RULE_OPS, type Dim, type ValueType, type ShapeInference } from './shapes';
