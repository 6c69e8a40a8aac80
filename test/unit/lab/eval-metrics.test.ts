/**
 * The evaluation's bookkeeping, on a CamModel test double whose answers are set per frame: which class
 * ranks where and where its map has mass. The box rules themselves are models/boxes.ts's (tested there);
 * here the question is whether accuracy, top-1/top-5 localization and MaxBoxAcc count the right images.
 */
import { describe, expect, it } from 'vitest';
import type { Box, CamModel, CamResult, Frame, InferOptions, LinearHead } from '../../../models/index.ts';
import { evaluate, evalJson, formatEvalMarkdown, type EvalSample } from '../../../lab/eval/index.ts';

const SIDE = 32;
const MAP = 8; // 4 input pixels per map cell

interface Answer {
  /** Classes best first (at least 5). */
  ranking: number[];
  /** Map cells [cx1, cy1, cx2, cy2) with mass, per class (others: zero map). */
  blobs: Map<number, [number, number, number, number]>;
}

function blobMap(cells: [number, number, number, number] | undefined): Float32Array {
  const m = new Float32Array(MAP * MAP);
  if (!cells) return m;
  const [x1, y1, x2, y2] = cells;
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) m[y * MAP + x] = 1;
  return m;
}

/** A CamModel whose results for each frame are looked up by the frame's pixel buffer. */
function scriptedModel(answers: Map<Uint8Array, Answer>): CamModel & { extraCalls: number } {
  const model = {
    extraCalls: 0,
    info: {
      engine: 'tfjs' as const,
      backend: 'scripted',
      threads: 1,
      runsOnJsThread: true,
      parallelism: 1,
      runtime: { package: '@tensorflow/tfjs-core', version: null },
      source: 'scripted',
      head: 'gap-dense' as const,
      preprocess: { inputSize: [SIDE, SIDE] as [number, number], channelOrder: 'rgb' as const, layout: 'nhwc' as const, scale: 1, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number], resize: 'stretch' as const, resizeFilter: 'triangle' as const, normalization: 'default' as const },
      featureShape: [MAP, MAP, 4] as [number, number, number],
      numClasses: 10,
      labels: Array.from({ length: 10 }, (_, i) => `c${i}`),
    },
    async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
      if (options.classes) model.extraCalls++;
      return frames.map((f) => {
        const a = answers.get(f.data)!;
        const ids = options.classes ? [...options.classes] : a.ranking.slice(0, options.topK ?? 5);
        const maps = new Float32Array(ids.length * MAP * MAP);
        ids.forEach((c, i) => maps.set(blobMap(a.blobs.get(c)), i * MAP * MAP));
        return {
          ids: Int32Array.from(ids),
          scores: Float32Array.from(ids.map((_, i) => 5 - i)),
          probabilities: Float32Array.from(ids.map((_, i) => 0.5 / (i + 1))),
          maps,
          mapSize: [MAP, MAP] as [number, number],
        };
      });
    },
    head(): LinearHead {
      throw new Error('not used');
    },
    withHead(): CamModel {
      throw new Error('not used');
    },
    async dispose(): Promise<void> {},
  };
  return model;
}

/** Ground truth: cells 2..5 x 2..6 of the 8x8 map, i.e. input pixels [8, 8, 20, 24]. */
const TRUTH: Box = [8, 8, 20, 24];
const ON_TARGET: [number, number, number, number] = [2, 2, 5, 6];
const ELSEWHERE: [number, number, number, number] = [6, 6, 8, 8];

function sample(label: number, answer: Answer, answers: Map<Uint8Array, Answer>): EvalSample {
  const data = new Uint8Array(SIDE * SIDE * 3);
  answers.set(data, answer);
  return { frame: { data, width: SIDE, height: SIDE }, label, boxes: [TRUTH] };
}

describe('evaluate', () => {
  it('counts accuracy, top-1 and top-5 localization and MaxBoxAcc on the right images', async () => {
    const answers = new Map<Uint8Array, Answer>();
    const samples = [
      // Right class, map on the object: counts everywhere.
      sample(3, { ranking: [3, 1, 2, 4, 5, 6], blobs: new Map([[3, ON_TARGET]]) }, answers),
      // Right class, map elsewhere: accuracy only.
      sample(4, { ranking: [4, 1, 2, 3, 5, 6], blobs: new Map([[4, ELSEWHERE]]) }, answers),
      // Second-ranked true class with a good map: top-5 localization (and MaxBoxAcc), not top-1.
      sample(5, { ranking: [7, 5, 1, 2, 3, 4], blobs: new Map([[5, ON_TARGET], [7, ON_TARGET]]) }, answers),
      // True class outside the top 5 but with a good map: only MaxBoxAcc (needs one more inference).
      sample(9, { ranking: [0, 1, 2, 3, 4, 9], blobs: new Map([[9, ON_TARGET]]) }, answers),
    ];
    const model = scriptedModel(answers);
    const report = await evaluate(model, samples, { batchSize: 3 });
    expect(report.n).toBe(4);
    expect(report.accuracy).toBe(0.5);
    expect(report.top5Accuracy).toBe(0.75);
    expect(report.paper!.top1Loc).toBe(0.25);
    expect(report.paper!.top5Loc).toBe(0.5);
    expect(report.paper!.maxBoxAcc).toBe(0.75);
    expect(report.official!.top1Loc).toBe(0.25);
    expect(report.official!.top5Loc).toBe(0.5);
    expect(model.extraCalls).toBe(1);
    expect(report.perClass).toEqual([
      { label: 3, n: 1, accuracy: 1, top1Loc: 1 },
      { label: 4, n: 1, accuracy: 1, top1Loc: 0 },
      { label: 5, n: 1, accuracy: 0, top1Loc: 0 },
      { label: 9, n: 1, accuracy: 0, top1Loc: 0 },
    ]);
    const context = { model: 'm', dataset: 'd', engine: 'tfjs', backend: 'scripted', labels: model.info.labels };
    const json = evalJson(report, context);
    expect(json).toMatchObject({ n: 4, accuracy: 0.5, top1Loc: 0.25, top5Loc: 0.5, maxBoxAcc: 0.75, backend: 'scripted' });
    expect((json.perClass as Array<{ name: string }>).map((k) => k.name)).toEqual(['c3', 'c4', 'c5', 'c9']);
    const table = formatEvalMarkdown(report, context);
    expect(table).toContain('| top-1 localization (IoU >= 0.5) | 25.00% | 25.00% |');
    expect(table).toContain('| c3 | 1 | 100.00% | 100.00% |');
    expect(table).toContain('| c4 | 1 | 100.00% | 0.00% |');
  });

  it('reports accuracy alone when the samples carry no boxes', async () => {
    const answers = new Map<Uint8Array, Answer>();
    const s = sample(2, { ranking: [2, 0, 1, 3, 4], blobs: new Map() }, answers);
    const report = await evaluate(scriptedModel(answers), [{ ...s, boxes: undefined }]);
    expect(report.accuracy).toBe(1);
    expect(report.paper).toBeNull();
    expect(report.official).toBeNull();
    expect(report.perClass).toEqual([{ label: 2, n: 1, accuracy: 1, top1Loc: null }]);
  });

  it('rejects an empty sample stream and bad settings', async () => {
    const model = scriptedModel(new Map());
    await expect(evaluate(model, [])).rejects.toThrow(/no images/);
    await expect(evaluate(model, [], { iouThreshold: 0 })).rejects.toThrow(/iouThreshold/);
  });
});
