import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError } from '../../common/index.ts';
import {
  DATASET_LAYOUTS,
  MNIST_RECIPES,
  MNIST_SPLITS,
  SCENE_SOURCES,
  type DatasetLayout,
  type MnistRecipe,
  type MnistSplit,
  type SceneSource,
} from '../../datasets/names.ts';
import { parsePositiveInt } from '../model.ts';

interface GenerateCliOptions {
  layout: DatasetLayout;
  n: number;
  seed: number;
  out: string;
  size: number;
  trainFraction: number;
  source: SceneSource;
  recipe?: MnistRecipe;
  split?: MnistSplit;
  quiet?: boolean;
}

function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`--seed must be a non-negative integer, got '${v}'`);
  return n;
}

function parseFraction(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new ConfigError(`--train-fraction must be a number in [0, 1], got '${v}'`);
  return n;
}

/** `camstream generate`: writes generated digit scenes as a dataset (Stanford 40 layout or folders). */
export function generateCommand(): Command {
  return new Command('generate')
    .summary('write generated cluttered digit scenes as an image dataset')
    .description(
      'Draws seeded cluttered scenes (one digit each, with its box) and writes them as JPEGs in the Stanford 40 ' +
        'layout (JPEGImages/, XMLAnnotations/, ImageSplits/) or one folder per class. The folder appears only ' +
        'when complete (written under a temporary name, then renamed).',
    )
    .addOption(new Option('--layout <layout>', 'dataset layout').choices([...DATASET_LAYOUTS]).default('stanford40'))
    .requiredOption('-o, --out <dir>', 'output folder (must not exist)')
    .option('-n, --n <count>', 'number of images', parsePositiveInt('--n'), 400)
    .option('--seed <n>', 'scene stream seed', parseSeed, 7)
    .option('--size <px>', 'image side in pixels', parsePositiveInt('--size'), 112)
    .option('--train-fraction <f>', 'share of each class listed in <class>_train.txt (Stanford 40)', parseFraction, 0.5)
    .addOption(new Option('--source <source>', 'procedural digits, or real MNIST digits (the mnist dev dependency)').choices([...SCENE_SOURCES]).default('procedural'))
    .addOption(
      new Option('--recipe <name>', "real-digit recipe (--source mnist): DeepMind's 100x100 cluttered MNIST, the STN paper's 60x60, webcam-like, or no digit")
        .choices([...MNIST_RECIPES]),
    )
    .addOption(new Option('--split <name>', 'MNIST split the digits come from (--source mnist; default test)').choices([...MNIST_SPLITS]))
    .option('-q, --quiet', 'no progress output')
    .action(async (options: GenerateCliOptions) => {
      if (options.source !== 'mnist' && (options.recipe !== undefined || options.split !== undefined)) {
        throw new ConfigError(`--recipe and --split need --source mnist, got --source ${options.source}`);
      }
      const { writeGeneratedDataset } = await import('../../datasets/index.ts');
      const bar =
        !options.quiet && process.stderr.isTTY
          ? new cliProgress.SingleBar({ format: 'generate |{bar}| {value}/{total} images | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic)
          : undefined;
      bar?.start(options.n, 0);
      try {
        const result = await writeGeneratedDataset(
          options.out,
          {
            layout: options.layout,
            n: options.n,
            seed: options.seed,
            size: options.size,
            trainFraction: options.trainFraction,
            source: options.source,
            recipe: options.recipe,
            split: options.split,
          },
          (done) => bar?.update(done),
        );
        bar?.stop();
        if (!options.quiet) {
          process.stderr.write(
            `wrote ${result.n} images (${result.layout}) to ${result.out}: ${result.classes.map((c, i) => `${c} ${result.counts[i]}`).join(', ')}\n`,
          );
        }
      } finally {
        bar?.stop();
      }
    });
}
