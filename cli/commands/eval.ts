import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../../common/index.ts';
import { DEFAULT_EVAL_SEED } from '../../lab/train/zoo-config.ts';
import { MNIST_RECIPES, type MnistRecipe } from '../../datasets/names.ts';
import type { EvalSample } from '../../lab/eval/index.ts';
import { addModelOptions, defaultModelDir, openModel, parsePositiveInt, type ModelCliOptions } from '../model.ts';

interface EvalCliOptions extends ModelCliOptions {
  dataset: string;
  n?: number;
  seed: number;
  split?: 'train' | 'test';
  batchSize: number;
  json?: boolean;
}

function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`--seed must be a non-negative integer, got '${v}'`);
  return n;
}

/** The scene streams a model folder's manifest.json says it was trained on (both phases), if any. */
function trainingSeedsOf(modelSpec: string | undefined): number[] {
  if (modelSpec === undefined || /^https?:/.test(modelSpec)) return [];
  const folder = modelSpec.endsWith('.json') ? resolve(modelSpec, '..') : resolve(modelSpec);
  const manifest = join(folder, 'manifest.json');
  if (!existsSync(manifest)) return [];
  try {
    const t = (JSON.parse(readFileSync(manifest, 'utf8')) as { training?: { seed?: unknown; sharpen?: { seed?: unknown } | null } }).training;
    return [t?.seed, t?.sharpen?.seed].filter((s): s is number => typeof s === 'number');
  } catch {
    return [];
  }
}

/** The recipe of `--dataset mnist:<recipe>`, undefined for another dataset; throws on an unknown recipe. */
function mnistRecipeOf(dataset: string): MnistRecipe | undefined {
  if (!dataset.startsWith('mnist:')) return undefined;
  const recipe = dataset.slice('mnist:'.length) as MnistRecipe;
  if (!MNIST_RECIPES.includes(recipe)) {
    throw new ConfigError(`--dataset ${dataset}: the recipe must be one of ${MNIST_RECIPES.map((r) => `mnist:${r}`).join(', ')}`);
  }
  return recipe;
}

/** `camstream eval`: accuracy and localization scores on generated scenes or a dataset folder. */
export function evalCommand(): Command {
  const command = new Command('eval')
    .summary('classification and localization accuracy of a model (paper and released-code box rules)')
    .description(
      'Scores a model on freshly generated scenes (--dataset generated) or on a dataset folder (Stanford 40 ' +
        'layout with boxes, or one folder per class): top-1 accuracy, top-1 and top-5 localization (right class ' +
        'and IoU >= 0.5), and MaxBoxAcc over map thresholds, with the paper\'s box rule and the released code\'s; ' +
        'then accuracy and top-1 localization per class. --dataset mnist:dm100|mnist:stn60|mnist:webcam|mnist:none ' +
        "builds real-digit scenes from the MNIST test split (seeded; --split train builds validation scenes from the " +
        "train split instead); for mnist:none the accuracy is the share answered 'no digit'.",
    )
    .option('-d, --dataset <dir|generated|mnist:recipe>', 'dataset folder, "generated" for fresh procedural scenes, or mnist:dm100|stn60|webcam|none', 'generated')
    .option('-n, --n <count>', 'number of images (generated and mnist: default 5000; folder: default all)', parsePositiveInt('--n'))
    .option('--seed <n>', 'scene stream for generated and mnist: scenes (a stream the model was trained on is refused for generated scenes and --split train)', parseSeed, DEFAULT_EVAL_SEED)
    .addOption(
      new Option(
        '--split <name>',
        'Stanford 40 split to use (default: both); with mnist:<recipe>, the MNIST split the digits come from ' +
          '(default test; train gives validation scenes, for choosing settings without touching the test split)',
      ).choices(['train', 'test']),
    )
    .option('--batch-size <n>', 'frames per inference call', parsePositiveInt('--batch-size'), 32)
    .option('--json', 'print the scores as JSON on stdout instead of a markdown table');
  addModelOptions(command);
  return command.action(async (options: EvalCliOptions) => {
    const recipe = mnistRecipeOf(options.dataset);
    const generated = options.dataset === 'generated' || recipe !== undefined;
    const validation = recipe !== undefined && options.split === 'train';
    if (options.dataset === 'generated' || validation) {
      // Those scenes would be the very ones the model was trained on. Without --model the embedded model
      // runs: its training streams are refused too.
      if (trainingSeedsOf(options.model ?? defaultModelDir()).includes(options.seed)) {
        throw new ConfigError(`--seed ${options.seed} is a scene stream this model was trained on; evaluate on another one`);
      }
    }
    const [{ readDataset }, { datasetSamples, evalJson, evaluate, formatEvalMarkdown, generatedSamples, mnistSamples }] = await Promise.all([
      import('../../datasets/index.ts'),
      import('../../lab/eval/index.ts'),
    ]);
    const dataset = generated ? undefined : await readDataset(options.dataset);
    const model = await openModel(options);
    try {
      const labels = model.info.labels;
      const total = generated
        ? (options.n ?? 5000)
        : Math.min(options.n ?? Infinity, dataset!.items.filter((it) => options.split === undefined || it.split === options.split).length);
      let samples: Iterable<EvalSample> | AsyncIterable<EvalSample>;
      const [h, w] = model.info.preprocess.inputSize;
      if (recipe !== undefined) {
        samples = mnistSamples(recipe, options.seed, total, labels, undefined, validation ? 'train' : 'test');
      } else if (generated) {
        samples = generatedSamples(options.seed, total, { size: Math.max(h, w) });
      } else {
        samples = datasetSamples(dataset!, labels, { split: options.split, limit: options.n });
      }
      const bar =
        !options.quiet && process.stderr.isTTY
          ? new cliProgress.SingleBar({ format: 'eval |{bar}| {value}/{total} images | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic)
          : undefined;
      bar?.start(total, 0);
      let report;
      try {
        report = await evaluate(model, samples, { batchSize: options.batchSize }, { total, onProgress: (done) => bar?.update(done) });
      } finally {
        bar?.stop();
      }
      const split = validation ? 'train split, validation' : 'test split';
      const context = {
        model: options.model ?? model.info.source,
        dataset:
          recipe === 'none'
            ? `mnist:none (${split}; accuracy = share answered 'no digit')`
            : recipe !== undefined
              ? `mnist:${recipe} (${split})`
              : generated
                ? 'generated scenes'
                : resolve(options.dataset),
        seed: generated ? options.seed : undefined,
        engine: model.info.engine,
        backend: model.info.backend,
        labels,
      };
      process.stdout.write(options.json ? `${JSON.stringify(evalJson(report, context), null, 2)}\n` : formatEvalMarkdown(report, context));
    } finally {
      await model.dispose();
    }
  });
}
