// Bench: ResNet-50-shaped random model, plain ORT session vs camstream's extended session.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { resnet50Spec } from '/work/main/models/builders/resnet50.ts';
import { toOnnxModel } from '/work/main/models/builders/to-onnx.ts';
import { loadOnnxModel } from '/work/main/models/onnx/index.ts';
import { randomFrames } from '/work/main/models/builders/random.ts';

const threads = Number(process.env.THREADS ?? 2);
const iters = Number(process.env.ITERS ?? 30);
const t0 = Date.now();
const spec = resnet50Spec({ seed: 1, foldBatchNorm: process.env.FOLD !== '0' });
const bytes = toOnnxModel(spec);
const dir = mkdtempSync(join(tmpdir(), 'bench-'));
const path = join(dir, 'resnet50.onnx');
writeFileSync(path, bytes);
console.log(`built ${(bytes.length / 1e6).toFixed(1)} MB in ${Date.now() - t0} ms`);

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)].toFixed(2)} ms, min ${s[0].toFixed(2)} ms`;
}
async function time(label: string, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 5; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const a = performance.now();
    await fn();
    ms.push(performance.now() - a);
  }
  console.log(`${label}: ${stats(ms)}`);
}

const plain = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
const x = new Float32Array(3 * 224 * 224).map(() => Math.random());
const model = await loadOnnxModel({ format: 'onnx', path, original: path, fileConfig: {} }, { threads });
console.log(model.info.backend, model.info.threads, model.info.featureShape);
const [f224] = randomFrames(1, 1, 224, 224);
const [f640] = randomFrames(2, 1, 640, 480);
const [f1080] = randomFrames(3, 1, 1920, 1080);
const batch4 = randomFrames(4, 4, 224, 224);
for (let round = 0; round < 2; round++) {
  await time('plain forward [1,3,224,224] float', () => plain.run({ input: new ort.Tensor('float32', x, [1, 3, 224, 224]) }));
  await time('camstream infer 224x224 frame, top-5 maps', () => model.infer([f224]));
  await time('camstream infer 224x224 frame, top-5 maps + features', () => model.infer([f224], { features: true }));
  await time('camstream infer 640x480 frame (resize in graph), top-5', () => model.infer([f640]));
  await time('camstream infer 1920x1080 frame (resize in graph), top-5', () => model.infer([f1080]));
}
const x4 = new Float32Array(4 * 3 * 224 * 224).map(() => Math.random());
await time('plain forward [4,3,224,224]', () => plain.run({ input: new ort.Tensor('float32', x4, [4, 3, 224, 224]) }));
await time('camstream infer 4 x 224x224, top-5', () => model.infer(batch4));
await model.dispose();
await plain.release();
