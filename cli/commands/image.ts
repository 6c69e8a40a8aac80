import { Command, Option } from 'commander';
import { annotateImages, type ImageRecord } from '../../pipelines/jobs/image.ts';
import { COLORMAP_NAMES } from '../../models/index.ts';
import { addModelOptions, openModel, parseNumberIn, parsePositiveInt, type ModelCliOptions } from '../model.ts';

interface ImageCliOptions extends ModelCliOptions {
  top: number;
  classes?: number[];
  out?: string;
  json?: boolean;
  boxRule: 'paper' | 'official';
  threshold: number;
  colormap: 'turbo' | 'jet' | 'inferno';
  alpha: number;
  normalize: 'minmax' | 'prob';
}

export function imageCommand(): Command {
  const command = new Command('image')
    .summary('class activation maps and boxes for still images')
    .description(
      'Runs each image through the model once, computes the class activation maps of the top classes and a box ' +
        'per class (in original pixels), and writes an overlay per image with --out, a JSON array with --json.',
    )
    .argument('<files...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('-k, --top <k>', 'classes per image, best first', parsePositiveInt('--top'), 5)
    .option('--classes <ids>', 'comma-separated class indices to map instead of the top-k', parseClassList)
    .option('-o, --out <dir>', 'write an overlay per image into this folder (<name>.cam.<ext>)')
    .option('--json', 'print the results as a JSON array on stdout')
    .addOption(new Option('--box-rule <rule>', 'paper: largest component above threshold; official: the released code').choices(['paper', 'official']).default('paper'))
    .option('--threshold <t>', 'paper box threshold, a fraction of the map maximum', parseNumberIn('--threshold', 0, 0.999), 0.2)
    .addOption(new Option('--colormap <name>', 'overlay colormap').choices([...COLORMAP_NAMES]).default('turbo'))
    .option('--alpha <a>', 'overlay opacity', parseNumberIn('--alpha', 0, 1), 0.5)
    .addOption(new Option('--normalize <mode>', 'minmax: each map to its own range; prob: scaled by the class probability').choices(['minmax', 'prob']).default('minmax'));
  addModelOptions(command);
  return command.action(async (files: string[], options: ImageCliOptions) => {
    const model = await openModel(options);
    try {
      const records = await annotateImages(
        files,
        model,
        {
          topK: options.top,
          classes: options.classes,
          outDir: options.out,
          boxRule: options.boxRule,
          threshold: options.threshold,
          normalize: options.normalize,
          overlay: { colormap: options.colormap, alpha: options.alpha },
        },
        options.json ? undefined : (record) => process.stdout.write(formatRecord(record)),
      );
      if (options.json) {
        const out = records.map(({ file, width, height, engine, backend, threads, top, overlay }) => ({
          file,
          width,
          height,
          engine,
          backend,
          threads,
          top: top.map(({ index, label, score, logit, box }) => ({ index, label, score, logit, box: box && box.map(round1) })),
          ...(overlay ? { overlay } : {}),
        }));
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      }
    } finally {
      await model.dispose();
    }
  });
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

function parseClassList(value: string): number[] {
  const ids = value.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error(`--classes must be comma-separated class indices, got '${value}'`);
  }
  return ids;
}
