import { Command, Option } from 'commander';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../../models/onnx/calibration-methods.ts';
import { parsePositiveInt } from '../model.ts';

interface QuantizeCliOptions {
  output: string;
  calibrate: string[];
  n: number;
  method: CalibrationMethod;
  json?: boolean;
  threads?: number;
  timingRuns: number;
  quiet?: boolean;
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .summary('static INT8 quantization of an ONNX model, with a fidelity report')
    .description(
      'Quantizes an fp32 ONNX model (QDQ: uint8 activations, int8 per-channel weights, int32 biases; the GAP head ' +
        'and CAM stay fp32) with activation ranges calibrated on images or video frames, then compares it with ' +
        'fp32 on held-out frames (every 4th) and stores the report in camstream.json beside the output.',
    )
    .argument('<model>', 'fp32 .onnx file (or URL); convert TF.js models first with camstream convert')
    .requiredOption('-o, --output <file>', 'the quantized .onnx file to write')
    .requiredOption('--calibrate <paths...>', 'images, folders of images, or videos to calibrate on')
    .option('--n <frames>', 'calibration frames at most', parsePositiveInt('--n'), 200)
    .addOption(new Option('--method <name>', 'activation ranges: minmax, percentile (99.99), mse (least error)').choices([...CALIBRATION_METHODS]).default('mse'))
    .option('--threads <n>', 'intra-op threads for calibration and timing (default: the free cores)', parsePositiveInt('--threads'))
    .option('--timing-runs <n>', 'interleaved forward passes timed per model', parsePositiveInt('--timing-runs'), 20)
    .option('--json', 'print the report as JSON on stdout')
    .option('-q, --quiet', 'no progress bar')
    .action(async (model: string, options: QuantizeCliOptions) => {
      // The quantizing itself lives in cli/int8.ts, shared with --int8.
      const [{ load }, { formatReport, progressBar, quantizeModelFile, readCalibrationFrames }] = await Promise.all([import('../../models/index.ts'), import('../int8.ts')]);
      const probe = await load(model, { engine: 'onnx', threads: 1, cacheDir: process.env.CAMSTREAM_CACHE || undefined });
      const pre = probe.info.preprocess;
      await probe.dispose();
      const frames = await readCalibrationFrames(options.calibrate, options.n, pre);
      const bar = progressBar('calibrating', !options.quiet && process.stderr.isTTY === true);
      try {
        const report = await quantizeModelFile({
          model,
          output: options.output,
          frames,
          method: options.method,
          threads: options.threads,
          timingRuns: options.timingRuns,
          cacheDir: process.env.CAMSTREAM_CACHE || undefined,
          onFrame: bar.update,
        });
        bar.stop();
        if (options.json) {
          const { top1Agreement, top5Overlap, camR, camRWorst, speedup } = report;
          process.stdout.write(`${JSON.stringify({ top1Agreement, top5Overlap, camR, camRWorst, speedup, frames: report.frames, threads: report.threads })}\n`);
        } else {
          process.stdout.write(`${options.output}\n${formatReport(report)}`);
        }
      } finally {
        bar.stop();
      }
    });
}
