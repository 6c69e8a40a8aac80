import { Command, Option } from 'commander';
import type { ImageFailure, ImageRecord } from '../../pipelines/jobs/image.ts';
import { parseClassRefs, type ClassRef } from '../../pipelines/jobs/classes.ts';
import { InputError } from '../../common/index.ts';
import { COLORMAP_NAMES } from '../../models/cam/colormaps.ts';
import { addModelOptions, openModel, parseNumberIn, parsePositiveInt, type ModelCliOptions } from '../model.ts';

interface ImageCliOptions extends ModelCliOptions {
  /** Unset unless given: the job then clamps its default to the class count. */
  top?: number;
  maxMegapixels: number;
  classes?: ClassRef[];
  out?: string;
  mapsOut?: string;
  json?: boolean;
  boxRule: 'paper' | 'official';
  threshold: number;
  colormap: 'turbo' | 'jet' | 'inferno';
  alpha: number;
  normalize: 'minmax' | 'prob';
  int8?: boolean;
}

export function imageCommand(): Command {
  const command = new Command('image')
    .summary('class activation maps and boxes for still images')
    .description(
      'Runs each image through the model once, computes the class activation maps of the top classes and a box ' +
        'per class (in original pixels), and writes an overlay per image with --out, a JSON array with --json.',
    )
    .argument('<files...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('-k, --top <k>', 'classes per image, best first (default: 5, or every class of a model with fewer)', parsePositiveInt('--top'))
    .option('--max-megapixels <mp>', 'refuse larger images, read from their header before decoding', parseNumberIn('--max-megapixels', 0.000001, 1e6), 64)
    .option('--classes <list>', 'comma-separated class indices or names (from the labels) to map instead of the top-k; one overlay per class', parseClassRefs)
    .option('-o, --out <dir>', 'write an overlay per image into this folder (<name>.cam.<ext>; with --classes <name>.c<index>.cam.<ext>)')
    .option('--maps-out <dir>', 'save each class map raw as float32 <name>.c<index>.npy (feature resolution) and as a 16-bit PNG at image size')
    .option('--json', 'print the results as a JSON array on stdout')
    .addOption(new Option('--box-rule <rule>', 'paper: largest component above threshold; official: the released code').choices(['paper', 'official']).default('paper'))
    .option('--threshold <t>', 'paper box threshold, a fraction of the map maximum', parseNumberIn('--threshold', 0, 0.999), 0.2)
    .addOption(new Option('--colormap <name>', 'overlay colormap').choices([...COLORMAP_NAMES]).default('turbo'))
    .option('--alpha <a>', 'overlay opacity', parseNumberIn('--alpha', 0, 1), 0.5)
    .addOption(new Option('--normalize <mode>', 'minmax: each map to its own range; prob: scaled by the class probability').choices(['minmax', 'prob']).default('minmax'));
  addModelOptions(command);
  return command.action(async (files: string[], options: ImageCliOptions) => {
    const { annotateImages } = await import('../../pipelines/jobs/image.ts');
    // --int8 (cli/model.ts) calibrates on these images on first use.
    const model = await openModel(options);
    // Results and failures in input order: a bad file is reported and skipped, and the run exits 3 at the end.
    const results: Array<ImageRecord | ImageFailure> = [];
    const onFailure = (failure: ImageFailure): void => {
      results.push(failure);
      process.stderr.write(`camstream: ${failure.error.message}\n`);
    };
    try {
      await annotateImages(
        files,
        model,
        {
          topK: options.top,
          maxPixels: Math.max(1, Math.round(options.maxMegapixels * 1e6)),
          classes: options.classes,
          outDir: options.out,
          mapsDir: options.mapsOut,
          boxRule: options.boxRule,
          threshold: options.threshold,
          normalize: options.normalize,
          overlay: { colormap: options.colormap, alpha: options.alpha },
        },
        (record) => {
          results.push(record);
          if (!options.json) process.stdout.write(formatRecord(record));
        },
        onFailure,
      );
      if (options.json) process.stdout.write(`${JSON.stringify(results.map(jsonRecord), null, 2)}\n`);
      const failed = results.length - results.filter((r) => 'top' in r).length;
      if (failed > 0) throw new InputError(`${failed} of ${files.length} image${files.length === 1 ? '' : 's'} could not be read (see above)`);
    } finally {
      await model.dispose();
    }
  });
}

/** The documented `--json` shape of one result: a record, or `{file, error}` for a file that failed. */
function jsonRecord(r: ImageRecord | ImageFailure): object {
  if (!('top' in r)) return { file: r.file, error: r.error.message };
  const { file, width, height, engine, backend, threads, normalization, top, shown, overlay } = r;
  return {
    file,
    width,
    height,
    engine,
    backend,
    threads,
    normalization,
    top: top.map(({ index, label, score, logit, box, ...saved }) => ({ index, label, score, logit, box: box && box.map(round1), ...saved })),
    shown,
    ...(overlay ? { overlay } : {}),
  };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function formatRecord(record: ImageRecord): string {
  const lines = [`${record.file} (${record.width}x${record.height}, ${record.inferMs.toFixed(1)} ms)`];
  for (const t of record.top) {
    const box = t.box ? `[${t.box.map((v) => Math.round(v)).join(', ')}]` : 'no box';
    lines.push(`  ${(t.score * 100).toFixed(1).padStart(5)}%  ${t.label} (#${t.index})  box ${box}`);
  }
  if (record.overlay) lines.push(`  overlay: ${record.overlay}`);
  return `${lines.join('\n')}\n`;
}
