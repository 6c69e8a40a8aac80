/**
 * `camstream eval` without `--model` evaluates the embedded model (models/zoo/digits-gap), so the scene
 * stream it was trained on is refused as it is with `--model` naming that folder (issue 16: `--model` is
 * optional). The real CLI and the real embedded model's manifest.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { ROOT } from '../helpers/fixtures.ts';

const ZOO_MODEL = join(ROOT, 'models', 'zoo', 'digits-gap');
const training = (JSON.parse(readFileSync(join(ZOO_MODEL, 'manifest.json'), 'utf8')) as { training: { seed: number; sharpen: { seed: number } } }).training;
const trainingSeed = training.seed;

describe('camstream eval without --model', () => {
  it("refuses the embedded model's training seed (exit 2), as with --model naming it", async () => {
    for (const model of [[], ['--model', ZOO_MODEL]]) {
      const run = await runCli(['eval', '--seed', String(trainingSeed), '--n', '4', '-q', ...model]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`--seed ${trainingSeed} is a scene stream this model was trained on`);
      expect(run.stdout).toBe('');
    }
  });

  it("refuses the second phase's stream too, and the training streams for validation scenes from the MNIST train split", async () => {
    const cases = [
      ['eval', '--seed', String(training.sharpen.seed), '--n', '4', '-q'],
      ['eval', '--dataset', 'mnist:dm100', '--split', 'train', '--seed', String(trainingSeed), '--n', '4', '-q'],
      ['eval', '--dataset', 'mnist:webcam', '--split', 'train', '--seed', String(training.sharpen.seed), '--n', '4', '-q'],
    ];
    for (const args of cases) {
      const run = await runCli(args);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/is a scene stream this model was trained on/);
    }
  });
});
