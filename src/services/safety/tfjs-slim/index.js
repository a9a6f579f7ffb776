/**
 * What nsfwjs gets when it imports `@tensorflow/tfjs` (package.json maps that name to this folder).
 *
 * The meta-package is ≈ 286 MB on disk (layers, data, the WebGL backend…); nsfwjs's graph models (MobileNetV2Mid)
 * need only tfjs-core's ops and tfjs-converter's `loadGraphModel`. The one thing the meta-package adds that nsfwjs
 * relies on is tfjs-core's "chained ops" (`tensor.toFloat()` …), which tfjs-core's Node bundle leaves out; nsfwjs's
 * `classify()` calls three of them, defined here from tfjs-core's own functions. The worker's tests prove the scores.
 */
import * as core from '@tensorflow/tfjs-core';

export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-converter';

/** @type {Record<string, unknown>} */
const proto = core.Tensor.prototype;
proto['toFloat'] ??= /** @this {core.Tensor} */ function () {
  return core.cast(this, 'float32');
};
proto['div'] ??= /** @this {core.Tensor} @param {core.Tensor | number} b */ function (b) {
  return core.div(this, b);
};
proto['reshape'] ??= /** @this {core.Tensor} @param {number[]} shape */ function (shape) {
  return core.reshape(this, shape);
};
