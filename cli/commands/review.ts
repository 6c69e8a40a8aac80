/**
 * `camstream review`: action-localization review in the Stanford 40 style (paper sec. 4).
 *   review import <dir> --model <backbone>   GAP features -> linear classifier -> CAMs -> metrics, into the store
 *   review report <dataset> [--json]          the metric table
 *   review export <dataset> --out FILE|-     [--format F: else from FILE's extension; required for -]
 * <dataset> is a dataset name or the folder it was imported from.
 *   review list                               datasets in the store
 * The store is `<home>/review.db`; home is --home, else CAMSTREAM_HOME, else ~/.camstream. Browse with
 * `camstream serve` at /review.
 */
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATASET_LAYOUTS, type DatasetLayout } from '../../datasets/names.ts';
import type { ReviewStore } from '../../review/index.ts';
import { EXPORT_FORMATS } from '../../review/formats.ts';
import { addModelOptions, openModel, parsePositiveInt, type ModelCliOptions } from '../model.ts';

/** The camstream home: --home, else CAMSTREAM_HOME, else ~/.camstream. */
export function reviewHome(option: string | undefined): string {
  return resolve(option ?? (process.env.CAMSTREAM_HOME || join(homedir(), '.camstream')));
}

type ReviewModule = typeof import('../../review/index.ts');

/** Opens the store with the review module, loaded only when a review command runs (SQLite, sharp, the report). */
async function withStore<T>(home: string | undefined, fn: (store: ReviewStore, review: ReviewModule) => Promise<T> | T): Promise<T> {
  const review = await import('../../review/index.ts');
  const store = review.ReviewStore.open(review.reviewDbPath(reviewHome(home)));
  try {
    return await fn(store, review);
  } finally {
    store.close();
  }
}

const homeOption = (): Option => new Option('--home <dir>', 'camstream home holding review.db (default: CAMSTREAM_HOME or ~/.camstream)');

interface ImportCliOptions extends ModelCliOptions {
  layout?: DatasetLayout;
  name?: string;
  home?: string;
  top: number;
  batch: number;
  seed: number;
}

function importCommand(): Command {
  const command = new Command('import')
    .summary('import a dataset, train a linear classifier on GAP features, localize its CAMs')
    .description(
      'Reads a Stanford 40 Actions layout (JPEGImages/, XMLAnnotations/, ImageSplits/) or one folder per class, ' +
        'computes each image\'s GAP feature vector with the backbone (cached in the store), trains a softmax ' +
        'classifier on the train split (regularization picked on a validation split), draws every image\'s CAMs ' +
        'from its weights and measures them against the annotated boxes. Bad files are reported and skipped.',
    )
    .argument('<dir>', 'dataset folder')
    .addOption(new Option('--layout <layout>', 'dataset layout (default: detected)').choices([...DATASET_LAYOUTS]))
    .option('--name <name>', 'dataset name in the store (default: the folder name)')
    .addOption(homeOption())
    .option('-k, --top <k>', 'classes whose maps are kept per image, besides the true class', parsePositiveInt('--top'), 3)
    .option('--batch <n>', 'images per inference batch', parsePositiveInt('--batch'), 8)
    .option('--seed <n>', 'seed of the splits', parsePositiveInt('--seed'), 7);
  addModelOptions(command);
  return command.action(async (dir: string, options: ImportCliOptions) => {
    const model = await openModel(options);
    const bar =
      !options.quiet && process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: 'review {phase} |{bar}| {value}/{total} images | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic)
        : undefined;
    let phase = '';
    try {
      const result = await withStore(options.home, (store, { importForReview }) =>
        importForReview(
          store,
          model,
          dir,
          { layout: options.layout, name: options.name, modelSpec: options.model, topK: options.top, batchSize: options.batch, seed: options.seed },
          {
            onProgress: (p, done, total) => {
              if (!bar) return;
              if (p !== phase) {
                if (phase) bar.stop();
                phase = p;
                bar.start(total, 0, { phase: p });
              }
              bar.update(done, { phase: p });
            },
            onIssue: (issue) => {
              if (bar) bar.stop();
              if (!options.quiet) process.stderr.write(`camstream: ${issue.severity === 'skipped' ? 'skipped' : 'warning'}: ${issue.path}: ${issue.reason}\n`);
              if (bar && phase) bar.start(bar.getTotal(), bar.getProgress() * bar.getTotal(), { phase });
            },
          },
        ),
      );
      bar?.stop();
      const s = result.summary;
      process.stdout.write(
        `imported ${s.totalImages} images as '${result.name}' (${result.issues.filter((i) => i.severity === 'skipped').length} skipped; ` +
          `features: ${result.featuresComputed} computed, ${result.featuresCached} cached)\n`,
      );
      const { formatReportTable } = await import('../../review/index.ts');
      process.stdout.write(formatReportTable(s));
    } finally {
      bar?.stop();
      await model.dispose();
    }
  });
}

const datasetArgument = 'dataset name, or the folder it was imported from';

function reportCommand(): Command {
  return new Command('report')
    .summary('print the metric table of an imported dataset')
    .argument('<dataset>', datasetArgument)
    .option('--json', 'print a JSON object (fractions in [0, 1]) instead of the table')
    .addOption(homeOption())
    .action(async (ref: string, options: { json?: boolean; home?: string }) => {
      await withStore(options.home, (store, { formatReportTable, reportJson }) => {
        const summary = reportJson(store, store.requireDatasetByNameOrPath(ref).name);
        process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatReportTable(summary));
      });
    });
}

/** Writes `text` to stdout and resolves once it is handed to the OS (a large HTML report included). */
function writeStdout(text: string): Promise<void> {
  return new Promise((done, fail) => process.stdout.write(text, (err) => (err ? fail(err) : done())));
}

function exportCommand(): Command {
  return new Command('export')
    .summary('export an imported dataset as CSV, JSON or a static HTML report')
    .argument('<dataset>', datasetArgument)
    .addOption(new Option('--format <format>', 'export format (default: from the extension of --out: .csv, .json, .html)').choices([...EXPORT_FORMATS]))
    .requiredOption('-o, --out <file>', 'output file (written atomically), or - for stdout (then --format is required)')
    .addOption(homeOption())
    .action(async (ref: string, options: { format?: string; out: string; home?: string }) => {
      // Checked before the store is opened: a usage error should not depend on the store.
      const { exportFormatFor } = await import('../../review/formats.ts');
      const format = exportFormatFor(options.out, options.format);
      await withStore(options.home, async (store, { renderExport, writeExport }) => {
        const name = store.requireDatasetByNameOrPath(ref).name;
        if (options.out === '-') await writeStdout(await renderExport(store, name, format));
        else await writeExport(store, name, format, resolve(options.out));
      });
      if (options.out !== '-') process.stderr.write(`camstream: wrote ${resolve(options.out)}\n`);
    });
}

function listCommand(): Command {
  return new Command('list')
    .summary('list the datasets in the store')
    .addOption(homeOption())
    .action(async (options: { home?: string }) => {
      await withStore(options.home, (store) => {
        const all = store.listDatasets();
        if (all.length === 0) process.stdout.write(`no datasets in ${store.path}\n`);
        for (const d of all) {
          const s = d.summary;
          process.stdout.write(`${d.name}\t${d.layout}\t${d.classes.length} classes\t${s ? `${s.totalImages} images, accuracy ${(s.accuracy * 100).toFixed(1)}%` : 'not analysed'}\t${d.root}\n`);
        }
      });
    });
}

/** `camstream review ...`. */
export function reviewCommand(): Command {
  const command = new Command('review')
    .summary('Stanford 40 style action-localization review: import, report, export (browse at /review of serve)')
    .addCommand(importCommand())
    .addCommand(reportCommand())
    .addCommand(exportCommand())
    .addCommand(listCommand());
  return command;
}
