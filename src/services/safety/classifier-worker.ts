/**
 * One classifier thread: loads nsfwjs's MobileNetV2Mid on TensorFlow.js's WebAssembly backend, then answers one
 * `classify` message at a time with the five class scores. Started by `classifier-pool.ts`, never imported.
 *
 * Classification is CPU-bound (tens of milliseconds per image): here it cannot delay the bot's event loop. Nothing is
 * downloaded: the .wasm binaries are read from the backend's npm package and the model from nsfwjs's.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as nsfwjs from 'nsfwjs';
import sharp from 'sharp';
import { MODEL_INPUT_SIZE, MODEL_NAME, type ClassifyRequest, type WorkerMessage } from './classifier-protocol.js';
import { IMAGE_CLASSES, type ImageClass } from './image-checker.js';

const port = parentPort;
if (!port) throw new Error('classifier-worker.ts runs in a worker thread started by the classifier pool');

const send = (message: WorkerMessage): void => port.postMessage(message);

/**
 * The part of nsfwjs's `NSFWJS` class used here. Its own declaration files import `./core` without an extension,
 * which TypeScript's NodeNext resolution cannot follow, so the type is restated (the tests check the behaviour).
 */
interface NsfwModel {
  classify(image: tf.Tensor3D, topk?: number): Promise<Array<{ className: string; probability: number }>>;
}
const loadNsfw = nsfwjs.load as unknown as (model: string, options: { size: number }) => Promise<NsfwModel>;

async function loadModel(): Promise<NsfwModel> {
  // The package's main file sits in its dist folder, next to tfjs-backend-wasm*.wasm.
  const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(`${dist}/`);
  // One thread per worker: IMAGE_CHECK_THREADS is the whole CPU budget of the check.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) throw new Error('the TensorFlow.js WebAssembly backend did not start');
  await tf.ready();
  // load() also runs the model once on zeros, so the first real image is not slower than the others.
  return loadNsfw(MODEL_NAME, { size: MODEL_INPUT_SIZE });
}

/** Decode any PNG/JPEG/WebP (grey, alpha, CMYK…) to the model's input: 224×224, 3 channels sRGB, stretched to fill. */
async function toInput(image: Uint8Array): Promise<tf.Tensor3D> {
  const { data, info } = await sharp(image)
    .resize(MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, { fit: 'fill' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return tf.tensor3d(new Uint8Array(data.buffer, data.byteOffset, data.length), [info.height, info.width, 3], 'int32');
}

async function classify(model: NsfwModel, image: Uint8Array): Promise<Record<ImageClass, number>> {
  const input = await toInput(image);
  try {
    const predictions = await model.classify(input, IMAGE_CLASSES.length);
    const scores = Object.fromEntries(IMAGE_CLASSES.map((c) => [c, Number.NaN])) as Record<ImageClass, number>;
    for (const { className, probability } of predictions) scores[className as ImageClass] = probability;
    return scores;
  } finally {
    // tfjs does not garbage-collect tensors: classify() disposes its own, the input is ours.
    input.dispose();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  // Every image is decoded once: libvips's operation cache (process-wide, up to 50 MB) would only hold memory.
  sharp.cache(false);
  // One libvips thread per image, as the model gets one WebAssembly thread: IMAGE_CHECK_THREADS bounds the CPU used.
  sharp.concurrency(1);
  let model: NsfwModel;
  try {
    model = await loadModel();
  } catch (error) {
    send({ type: 'load_failed', message: error instanceof Error ? error.message : String(error) });
    return;
  }
  // Requests arrive one at a time (the pool waits for each answer), so classifications never overlap.
  port!.on('message', (request: ClassifyRequest) => {
    classify(model, request.image).then(
      (scores) => send({ type: 'scores', id: request.id, scores }),
      (error: unknown) => send({ type: 'error', id: request.id, message: error instanceof Error ? error.message : String(error) }),
    );
  });
  send({ type: 'ready', loadMs: performance.now() - started });
}

await main();
