/**
 * Weakly supervised localization benchmark of a CamModel, as in Zhou et al. 2016, sec. 3.1 and 3.2:
 * - classification accuracy (top-1);
 * - top-1 localization: the top-1 class is right AND the box from its map has IoU >= 0.5 with a true box;
 * - top-5 localization: the true class is among the top 5 AND the box from the true class's map has
 *   IoU >= 0.5 (of the five (class, box) guesses only the true class's can count);
 * - MaxBoxAcc (Choe et al. 2020, sec. 4.1): boxes from the true class's map at every threshold of a sweep,
 *   the best share of images with IoU >= 0.5 over the thresholds.
 * Each localization figure is computed with two box rules: the paper's (largest connected component
 * above 20% of the map's maximum, `paperBox`) and the released code's (`officialBox`, see models/boxes.ts).
 */
import type { Box, CamModel, CamResult, Frame, FrameGeometry } from '../../models/index.ts';
import { ConfigError } from '../../common/index.ts';
import { maxBoxAcc, officialBox, officialBoxes, paperBox, thresholdSweep, iou } from '../../models/index.ts';

/** One image with its class (model class index) and true boxes (undefined: not annotated). */
export interface EvalSample {
  frame: Frame;
  label: number;
  boxes: Box[] | undefined;
}

export interface EvalConfig {
  /** Frames per `infer` call. Default 32. */
  batchSize?: number;
  /** IoU needed for a correct box. Default 0.5 (the paper's). */
  iouThreshold?: number;
  /** Paper-rule threshold for top-1/top-5 localization, a fraction of the map maximum. Default 0.2. */
  paperThreshold?: number;
  /** Map thresholds of the MaxBoxAcc sweep. Default 0.05, 0.10, ..., 0.95. */
  sweep?: readonly number[];
}

export const DEFAULT_EVAL_CONFIG = Object.freeze({
  batchSize: 32,
  iouThreshold: 0.5,
  paperThreshold: 0.2,
  sweep: Object.freeze(Array.from({ length: 19 }, (_, i) => Math.round((i + 1) * 5) / 100)) as readonly number[],
});

export function resolveEvalConfig(config: EvalConfig = {}): Required<EvalConfig> {
  const c = { ...DEFAULT_EVAL_CONFIG, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
  if (!Number.isInteger(c.batchSize) || c.batchSize < 1 || c.batchSize > 1024) {
    throw new ConfigError(`batchSize must be an integer in [1, 1024], got ${c.batchSize}`);
  }
  if (!(c.iouThreshold > 0 && c.iouThreshold <= 1)) throw new ConfigError(`iouThreshold must be in (0, 1], got ${c.iouThreshold}`);
  if (!(c.paperThreshold >= 0 && c.paperThreshold < 1)) throw new ConfigError(`paperThreshold must be in [0, 1), got ${c.paperThreshold}`);
  if (!Array.isArray(c.sweep) || c.sweep.length === 0 || c.sweep.some((t) => !(t > 0 && t < 1))) {
    throw new ConfigError(`sweep must be a non-empty list of thresholds in (0, 1), got ${JSON.stringify(c.sweep)}`);
  }
  return c as Required<EvalConfig>;
}

/** Localization figures under one box rule (fractions 0-1). */
export interface LocalizationScores {
  top1Loc: number;
  top5Loc: number;
  maxBoxAcc: number;
  /** The sweep threshold reaching maxBoxAcc. */
  maxBoxAccThreshold: number;
  /** Mean IoU of the true class's box (at the rule's default threshold) with the true box. */
  meanIou: number;
}

/** Figures for the images of one true class (fractions 0-1). */
export interface ClassScores {
  /** Model class index. */
  label: number;
  n: number;
  accuracy: number;
  /** Paper-rule top-1 localization over the class's annotated images; null when none is annotated. */
  top1Loc: number | null;
}

export interface EvalReport {
  n: number;
  /** Top-1 classification accuracy, 0-1. */
  accuracy: number;
  /** Top-5 classification accuracy, 0-1. */
  top5Accuracy: number;
  /** Paper rule figures; null when the samples carry no boxes. */
  paper: LocalizationScores | null;
  /** Released-code rule figures; null when the samples carry no boxes. */
  official: LocalizationScores | null;
  /** Per true class, for the classes that occur, by class index. */
  perClass: ClassScores[];
  iouThreshold: number;
  paperThreshold: number;
  seconds: number;
}

/** Progress: images done so far (total when known). */
export type EvalProgress = (done: number, total: number | undefined) => void;

/**
 * Runs `model` over `samples` and scores classification and localization. Samples without boxes count
 * for accuracy only; localization figures are over the annotated samples (null when there are none).
 * `total` is only for progress reports.
 */
export async function evaluate(
  model: CamModel,
  samples: AsyncIterable<EvalSample> | Iterable<EvalSample>,
  config: EvalConfig = {},
  progress?: { total?: number; onProgress?: EvalProgress },
): Promise<EvalReport> {
  const c = resolveEvalConfig(config);
  const started = performance.now();
  const t = newTally();
  const run = async (batch: EvalSample[]): Promise<void> => {
    await scoreBatch(model, batch, c, t);
    progress?.onProgress?.(t.n, progress.total);
  };
  let batch: EvalSample[] = [];
  for await (const sample of samples) {
    batch.push(sample);
    if (batch.length === c.batchSize) {
      await run(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await run(batch);
  if (t.n === 0) throw new ConfigError('evaluation got no images');
  return {
    n: t.n,
    accuracy: t.top1 / t.n,
    top5Accuracy: t.top5 / t.n,
    paper: localizationScores(t, 'paper', c),
    official: localizationScores(t, 'official', c),
    perClass: [...t.classes.entries()]
      .sort(([a], [b]) => a - b)
      .map(([label, k]) => ({ label, n: k.n, accuracy: k.top1 / k.n, top1Loc: k.annotated === 0 ? null : k.top1Loc / k.annotated })),
    iouThreshold: c.iouThreshold,
    paperThreshold: c.paperThreshold,
    seconds: (performance.now() - started) / 1000,
  };
}

type ResolvedEvalConfig = Required<EvalConfig>;

/** Counts of one true class. */
interface ClassTally {
  n: number;
  top1: number;
  annotated: number;
  top1Loc: number;
}

/** Running counts over the samples seen so far, per box rule for localization. */
interface Tally {
  n: number;
  top1: number;
  top5: number;
  annotated: number;
  rules: {
    paper: { top1: number; top5: number; iouSum: number; sweep: Array<Array<Box | null>> };
    official: { top1: number; top5: number; iouSum: number; sweep: Array<Box[][]> };
  };
  /** The annotated samples' boxes, in the order of the sweeps. */
  truths: Box[][];
  classes: Map<number, ClassTally>;
}

function newTally(): Tally {
  return {
    n: 0,
    top1: 0,
    top5: 0,
    annotated: 0,
    rules: {
      paper: { top1: 0, top5: 0, iouSum: 0, sweep: [] },
      official: { top1: 0, top5: 0, iouSum: 0, sweep: [] },
    },
    truths: [],
    classes: new Map(),
  };
}

/** One inference pass over `batch`, then each sample's classification and (when annotated) localization. */
async function scoreBatch(model: CamModel, batch: EvalSample[], c: ResolvedEvalConfig, t: Tally): Promise<void> {
  const results = await model.infer(
    batch.map((s) => s.frame),
    { topK: Math.min(5, model.info.numClasses) },
  );
  for (const [i, sample] of batch.entries()) {
    const r = results[i];
    const { label } = sample;
    const rank = Array.prototype.indexOf.call(r.ids, label) as number;
    t.n++;
    if (rank === 0) t.top1++;
    if (rank >= 0) t.top5++;
    let cls = t.classes.get(label);
    if (cls === undefined) t.classes.set(label, (cls = { n: 0, top1: 0, annotated: 0, top1Loc: 0 }));
    cls.n++;
    if (rank === 0) cls.top1++;
    if (sample.boxes === undefined || sample.boxes.length === 0) continue;
    t.annotated++;
    cls.annotated++;
    await scoreLocalization(model, sample, sample.boxes, r, rank, c, t, cls);
  }
}

/** Boxes from the true class's map under both rules, scored against the sample's annotated boxes. */
async function scoreLocalization(
  model: CamModel,
  sample: EvalSample,
  gts: Box[],
  r: CamResult,
  rank: number,
  c: ResolvedEvalConfig,
  t: Tally,
  cls: ClassTally,
): Promise<void> {
  const [inH, inW] = model.info.preprocess.inputSize;
  const size = r.mapSize;
  const cells = size[0] * size[1];
  const geometry: FrameGeometry = {
    frameWidth: sample.frame.width,
    frameHeight: sample.frame.height,
    inputWidth: inW,
    inputHeight: inH,
    resize: model.info.preprocess.resize,
  };
  // The true class's map: among the top-k maps, else one more pass for that class alone.
  let trueMap: Float32Array;
  if (rank >= 0) {
    trueMap = r.maps.subarray(rank * cells, (rank + 1) * cells);
  } else {
    const [extra] = await model.infer([sample.frame], { classes: [sample.label] });
    trueMap = extra.maps;
  }
  const best = (b: Box | null): number => (b === null ? 0 : Math.max(...gts.map((g) => iou(b, g))));
  const paperIou = best(paperBox(trueMap, size, geometry, { threshold: c.paperThreshold }));
  const officialIou = best(officialBox(trueMap, size, geometry));
  const { paper, official } = t.rules;
  paper.iouSum += paperIou;
  official.iouSum += officialIou;
  // Top-1 localization: the top-1 class's own map, which is the true class's map when top-1 is right.
  if (rank === 0) {
    if (paperIou >= c.iouThreshold) {
      paper.top1++;
      cls.top1Loc++;
    }
    if (officialIou >= c.iouThreshold) official.top1++;
  }
  if (rank >= 0) {
    if (paperIou >= c.iouThreshold) paper.top5++;
    if (officialIou >= c.iouThreshold) official.top5++;
  }
  paper.sweep.push(thresholdSweep(trueMap, size, geometry, c.sweep));
  // Released rule at one threshold may give several boxes; MaxBoxAcc counts the best one.
  official.sweep.push(c.sweep.map((th) => officialBoxes(trueMap, size, geometry, { thresholds: [th] })));
  t.truths.push(gts);
}

/** One rule's localization figures over the annotated samples, or null when there are none. */
function localizationScores(t: Tally, rule: 'paper' | 'official', c: ResolvedEvalConfig): LocalizationScores | null {
  if (t.annotated === 0) return null;
  const r = t.rules[rule];
  const m = maxBoxAcc(r.sweep, t.truths, { iouThreshold: c.iouThreshold, thresholds: c.sweep });
  return {
    top1Loc: r.top1 / t.annotated,
    top5Loc: r.top5 / t.annotated,
    maxBoxAcc: m.value,
    maxBoxAccThreshold: m.bestThreshold ?? c.sweep[m.bestIndex],
    meanIou: r.iouSum / t.annotated,
  };
}
