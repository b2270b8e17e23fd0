/** Model building for tests: the library's GraphBuilder, and ResNet-50 at scale (random weights). */
import { resnet50Model } from '../../bench/models';
import { decodeModel } from '../../lib/load';
import { encodeModel, type Model } from '../../lib/model';

export { GraphBuilder, type Dim } from '../../lib/model/builder';

/**
 * torchvision's ResNet-50 (v1.5, BatchNorm folded into conv biases) with random weights: 53 convs
 * and the classifier, 25.5 M weights, 26,560 output neurons, input x [N, 3, H, W]. For scale, not fidelity.
 */
export function buildResNet50(seed = 1): Model {
  return decodeModel(encodeModel(resnet50Model(seed, { batchNorm: false, spatial: 'symbolic' })));
}
