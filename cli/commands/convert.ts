import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { MODEL_CONFIG_FILE } from '../../models/load/config.ts';
import { CONVERTIBLE_LAYERS } from '../../models/convert/layers-to-onnx.ts';

/** Writes through a temporary name (the sinks' helper, loaded when a conversion runs). */
async function writeAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const { writeFileAtomic } = await import('../../pipelines/sinks/manifest.ts');
  await writeFileAtomic(path, content);
}

/**
 * Carries the TF.js model's camstream.json (and the labels file it names) beside the ONNX file; `layout`
 * is dropped because the converted graph is NCHW.
 */
async function carryConfig(modelDir: string, outDir: string): Promise<string | undefined> {
  const from = join(modelDir, MODEL_CONFIG_FILE);
  if (!existsSync(from) || resolve(modelDir) === resolve(outDir)) return undefined;
  const { layout: _layout, ...config } = JSON.parse(await readFile(from, 'utf8')) as Record<string, unknown>;
  if (typeof config.labels === 'string' && existsSync(join(modelDir, config.labels))) {
    await copyFile(join(modelDir, config.labels), join(outDir, config.labels));
  }
  const to = join(outDir, MODEL_CONFIG_FILE);
  await writeAtomic(to, `${JSON.stringify(config, null, 2)}\n`);
  return to;
}

export function convertCommand(): Command {
  return new Command('convert')
    .summary('convert a TF.js layers model to ONNX')
    .description(
      `Writes the same network with the same weights as an NCHW ONNX model (opset 13), for ONNX Runtime and ` +
        `camstream quantize. Layers: ${CONVERTIBLE_LAYERS.join(', ')}.`,
    )
    .argument('<model>', 'TF.js layers model folder or its model.json')
    .requiredOption('-o, --output <file>', 'the .onnx file to write')
    .action(async (model: string, options: { output: string }) => {
      const { convertTfjsToOnnx } = await import('../../models/convert/index.ts');
      const bytes = await convertTfjsToOnnx(model);
      const outDir = dirname(resolve(options.output));
      await mkdir(outDir, { recursive: true });
      await writeAtomic(options.output, bytes);
      const modelDir = model.endsWith('.json') ? dirname(resolve(model)) : resolve(model);
      const config = await carryConfig(modelDir, outDir);
      process.stdout.write(`${options.output} (${(bytes.byteLength / 1e6).toFixed(1)} MB)${config ? `, settings in ${config}` : ''}\n`);
    });
}
