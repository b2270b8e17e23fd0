export { hashWeights, hashCapabilities, type HashResult, type HashBackend } from './hash';
export { hashWeightsReference } from './kernels/hash';
export { HASH_DEFAULTS, type HashOptions, type Device } from './options';
export { RedppError, type RedppErrorCode } from './errors';
