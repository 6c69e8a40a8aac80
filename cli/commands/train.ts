import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../../common/index.ts';
import type { TrainProgress } from '../../lab/train/index.ts';
import { ZOO_MODEL_DIR, ZOO_SHARPEN_PHASE, ZOO_TRAIN_CONFIG } from '../../lab/train/zoo-config.ts';
import { parsePositiveInt } from '../model.ts';

interface TrainCliOptions {
  out?: string;
  replaceShipped?: boolean;
  steps: number;
  batchSize: number;
  seed: number;
  lr: number;
  replicas: number;
  sharpenSteps: number;
  sharpenWeight: number;
  sharpenSources?: Record<string, number>;
  sharpenFrom?: string;
  backend?: string;
  quiet?: boolean;
}

function parseNonNegativeInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function parseAreaWeight(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 100)) throw new Error(`--sharpen-weight must be a number in [0, 100], got '${v}'`);
  return n;
}

/** `dm100=4,procedural=0.2`: a multiplier per training source (names checked by the trainer). */
function parseSourceWeights(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(',')) {
    const m = /^\s*([a-z0-9]+)\s*=\s*([0-9.]+)\s*$/.exec(part);
    const n = m ? Number(m[2]) : NaN;
    if (!m || !(n >= 0 && n <= 100)) throw new Error(`--sharpen-sources must be a list like dm100=4,procedural=0.2 (numbers in [0, 100]), got '${v}'`);
    out[m[1]] = n;
  }
  return out;
}

/** The recipe's per-source multipliers as --sharpen-sources writes them. */
const formatSourceWeights = (w: Readonly<Record<string, number>> | undefined): string =>
  Object.entries(w ?? {})
    .map(([k, n]) => `${k}=${n}`)
    .join(',');

function parseRate(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new Error(`--lr must be a number in (0, 1], got '${v}'`);
  return n;
}

/** `camstream train`: rebuilds the embedded model (or a variant) from scratch on generated scenes. */
export function trainCommand(): Command {
  return new Command('train')
    .summary('train the embedded GAP model from scratch on generated scenes')
    .description(
      'Trains the digits GAP network on freshly generated cluttered scenes (seeded, no downloads) and writes ' +
        'the model folder: model.json, weights, labels.txt, camstream.json and manifest.json. With no options ' +
        'it runs the shipped recipe into a new folder ./digits-gap-<date>; only --replace-shipped writes over ' +
        'the shipped model in models/zoo/. Uses tfjs-node when installed, else the wasm backend.',
    )
    .option('-o, --out <dir>', 'model folder to write (replaced atomically; default: a new ./digits-gap-<date>)')
    .option('--replace-shipped', `write over the shipped embedded model (${ZOO_MODEL_DIR})`)
    .option('--steps <n>', 'optimizer steps of the first phase (cross-entropy)', parsePositiveInt('--steps'), ZOO_TRAIN_CONFIG.steps)
    .option('--batch-size <n>', 'scenes per step', parsePositiveInt('--batch-size'), ZOO_TRAIN_CONFIG.batchSize)
    .option('--seed <n>', 'seed of the weights and of the training scenes', parseNonNegativeInt('--seed'), ZOO_TRAIN_CONFIG.seed)
    .option('--lr <rate>', 'initial Adam learning rate (cosine decay)', parseRate, ZOO_TRAIN_CONFIG.learningRate)
    .option(
      '--replicas <n>',
      'data-parallel copies of the network, each on its own thread, gradients averaged every step ' +
        '(part of the recipe: another count gives a slightly different model)',
      parsePositiveInt('--replicas'),
      ZOO_TRAIN_CONFIG.replicas,
    )
    .option(
      '--sharpen-steps <n>',
      "steps of the second phase, map sharpening: the labelled digit's class map, cut at 0, mean over maximum, " +
        'added to the cross-entropy (image labels only); 0 skips the phase',
      parseNonNegativeInt('--sharpen-steps'),
      ZOO_SHARPEN_PHASE.steps,
    )
    .option('--sharpen-weight <w>', 'weight of the map term in the second phase', parseAreaWeight, ZOO_SHARPEN_PHASE.mapAreaWeight)
    .option(
      '--sharpen-sources <list>',
      'multiplier of that weight per training source (procedural, dm100, stn60, webcam, none), e.g. ' +
        `'dm100=4,procedural=0.2'; a source not listed gets 1 (default: the recipe's, ${formatSourceWeights(ZOO_SHARPEN_PHASE.mapAreaBySource) || 'all 1'})`,
      parseSourceWeights,
    )
    .option(
      '--sharpen-from <dir>',
      'skip the first phase: run the second on a model folder this command wrote with --sharpen-steps 0 (same network)',
    )
    .option('--backend <name>', 'tfjs backend: tensorflow, wasm or cpu (default: the fastest available)')
    .option('-q, --quiet', 'no progress output')
    .action(runTrain);
}

/** The action of `camstream train`: backend, progress output, SIGINT to stop, then the model folder. */
async function runTrain(options: TrainCliOptions): Promise<void> {
  const out = trainOutput(options);
  const [{ initTfjsBackend }, { trainZooModel }] = await Promise.all([import('../../models/tfjs/backend.ts'), import('../../lab/train/index.ts')]);
  const backend = await initTfjsBackend(options.backend);
  const args = process.argv.slice(process.argv.indexOf('train'));
  const command = `camstream ${args.join(' ')}`;
  const bar = process.stderr.isTTY === true && !options.quiet ? createTrainBar() : undefined;
  const sharpen =
    options.sharpenSteps === 0
      ? null
      : { ...ZOO_SHARPEN_PHASE, steps: options.sharpenSteps, mapAreaWeight: options.sharpenWeight, mapAreaBySource: options.sharpenSources ?? ZOO_SHARPEN_PHASE.mapAreaBySource };
  if (options.sharpenFrom !== undefined && sharpen === null) throw new ConfigError('--sharpen-from needs a second phase: drop --sharpen-steps 0');
  const firstSteps = options.sharpenFrom === undefined ? options.steps : 0;
  const totalSteps = firstSteps + (sharpen?.steps ?? 0);
  if (!options.quiet) {
    const perSource = formatSourceWeights(sharpen?.mapAreaBySource);
    const phases = [
      ...(firstSteps > 0 ? [`${firstSteps} steps`] : [`from ${options.sharpenFrom}`]),
      ...(sharpen ? [`${sharpen.steps} sharpening steps (map weight ${sharpen.mapAreaWeight}${perSource ? `, per source ${perSource}` : ''})`] : []),
    ].join(' + ');
    process.stderr.write(`camstream train: backend ${backend.name}, ${phases} x ${options.batchSize} scenes on ${options.replicas} thread${options.replicas === 1 ? '' : 's'}, seed ${options.seed} -> ${out}\n`);
  }
  bar?.start(totalSteps, 0, { loss: '-', ips: '-' });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort(new Error('training interrupted'));
  process.once('SIGINT', onSignal);
  try {
    const { manifest } = await trainZooModel({
      folder: out,
      command,
      config: { ...ZOO_TRAIN_CONFIG, seed: options.seed, steps: options.steps, batchSize: options.batchSize, learningRate: options.lr, replicas: options.replicas },
      sharpen,
      startFrom: options.sharpenFrom,
      onProgress: progressReporter(options, bar, totalSteps),
      signal: stop.signal,
    });
    bar?.stop();
    if (!options.quiet) {
      const t = manifest.training;
      const second = t.sharpen ? `; sharpening ${t.sharpen.steps} steps in ${t.sharpen.wallSeconds} s, final loss ${t.sharpen.finalLoss.toFixed(4)}` : '';
      process.stderr.write(
        `wrote ${out}: ${t.steps} steps in ${t.wallSeconds} s on ${t.backend}, final loss ${t.finalLoss.toFixed(4)}${second}, ` +
          `${(t.weightBytes / 1024).toFixed(0)} KiB of weights\n`,
      );
    }
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
  }
}

/**
 * The folder `camstream train` writes: --out, the shipped model's folder with --replace-shipped, else a
 * new `digits-gap-<date>` folder in the working directory.
 * @throws ConfigError when --out names the shipped folder without --replace-shipped, or both are given.
 */
export function trainOutput(options: { out?: string; replaceShipped?: boolean }, now = new Date()): string {
  if (options.replaceShipped) {
    if (options.out !== undefined && resolve(options.out) !== ZOO_MODEL_DIR) {
      throw new ConfigError(`--replace-shipped writes ${ZOO_MODEL_DIR}; drop --out ${options.out} or --replace-shipped`);
    }
    return ZOO_MODEL_DIR;
  }
  if (options.out !== undefined) {
    const out = resolve(options.out);
    if (out === ZOO_MODEL_DIR) throw new ConfigError(`--out ${options.out} is the shipped model's folder; add --replace-shipped to overwrite it`);
    return out;
  }
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  let out = resolve(`digits-gap-${stamp}`);
  for (let k = 2; existsSync(out); k++) out = resolve(`digits-gap-${stamp}-${k}`);
  return out;
}

function createTrainBar(): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format: 'train |{bar}| {value}/{total} steps | loss {loss} | {ips} img/s | ETA {eta_formatted}',
      etaBuffer: 200,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
}

/** Progress to the bar on a terminal; without one, a line per 2% of the run (for logs); nothing when quiet. */
function progressReporter(options: TrainCliOptions, bar: cliProgress.SingleBar | undefined, totalSteps: number): (p: TrainProgress) => void {
  const every = Math.max(1, Math.round(totalSteps / 50));
  return (p) => {
    if (bar) {
      bar.update(p.step, { loss: p.smoothedLoss.toFixed(3), ips: p.imagesPerSecond.toFixed(0) });
    } else if (!options.quiet && (p.step % every === 0 || p.step === p.steps)) {
      const cpu = process.cpuUsage();
      process.stderr.write(
        `step ${p.step}/${p.steps} loss ${p.smoothedLoss.toFixed(4)} lr ${p.learningRate.toExponential(2)} ` +
          `${p.imagesPerSecond.toFixed(1)} img/s elapsed ${(p.elapsedMs / 1000).toFixed(0)} s ` +
          `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s\n`,
      );
    }
  };
}
