/**
 * `camstream eval --dataset mnist:<recipe>` builds the MNIST test split's scenes itself and scores them.
 * On mnist:none the accuracy is the share of clutter-only scenes the model answers `no digit`.
 */
import { describe, expect, it } from 'vitest';
import { CLASS_LABELS, generateMnistScene, loadMnistDigits, MNIST_TRAIN_FRACTION, MnistSampler } from '../../datasets/index.ts';
import { mnistSamples } from '../../lab/eval/index.ts';
import { runCli } from '../helpers/cli.ts';

describe('camstream eval on real-digit scenes', () => {
  it('scores mnist:stn60 with accuracy and paper-rule localization, reproducibly for a seed', async () => {
    const args = ['eval', '--dataset', 'mnist:stn60', '--n', '40', '--seed', '77', '--json', '-q'];
    const run = await runCli(args);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { n: number; accuracy: number; top1Loc: number | null; dataset: string; perClass: unknown[] };
    expect(report.n).toBe(40);
    expect(report.dataset).toBe('mnist:stn60 (test split)');
    expect(report.top1Loc).not.toBeNull();
    expect(report.perClass).toHaveLength(10);
    const again = JSON.parse((await runCli(args)).stdout) as { accuracy: number; top1Loc: number };
    expect([again.accuracy, again.top1Loc]).toEqual([report.accuracy, report.top1Loc]);
  });

  it('scores mnist:none as the share answered "no digit", without boxes', async () => {
    const run = await runCli(['eval', '--dataset', 'mnist:none', '--n', '20', '--json', '-q']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { n: number; accuracy: number; top1Loc: number | null; dataset: string };
    expect(report.n).toBe(20);
    // The shipped model answers `no digit` to 93% of 5000 such scenes (MODEL_CARD.md).
    expect(report.accuracy).toBeGreaterThan(0.6);
    expect(report.top1Loc).toBeNull();
    expect(report.dataset).toMatch(/share answered 'no digit'/);
  });


  it('--split train scores validation scenes built from MNIST train-split digits only', async () => {
    const run = await runCli(['eval', '--dataset', 'mnist:stn60', '--split', 'train', '--n', '30', '--seed', '4242', '--json', '-q']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { n: number; dataset: string; top1Loc: number | null };
    expect(report.n).toBe(30);
    expect(report.dataset).toBe('mnist:stn60 (train split, validation)');
    expect(report.top1Loc).not.toBeNull();
    // The same stream from each split draws on disjoint digits: below and at or above the 85% cut.
    const digits = loadMnistDigits();
    const cut = (label: number): number => Math.floor(MNIST_TRAIN_FRACTION * digits.counts[label]);
    for (const split of ['train', 'test'] as const) {
      const sampler = new MnistSampler(digits, split);
      for (let i = 0; i < 30; i++) {
        for (const d of generateMnistScene(sampler, 'stn60', 4242, i).sources) expect(d.index < cut(d.label)).toBe(split === 'train');
      }
    }
    const labels = [...CLASS_LABELS.slice(0, 10), 'no digit'];
    const fromTrain = [...mnistSamples('stn60', 4242, 5, labels, 100, 'train')].map((s) => s.frame.data);
    const fromTest = [...mnistSamples('stn60', 4242, 5, labels)].map((s) => s.frame.data);
    expect(fromTrain[0]).toEqual(generateMnistScene(new MnistSampler(digits, 'train'), 'stn60', 4242, 0).rgb);
    expect(fromTest[0]).not.toEqual(fromTrain[0]);
  });

  it('refuses an unknown recipe, naming the allowed ones', async () => {
    const run = await runCli(['eval', '--dataset', 'mnist:cifar', '--n', '2', '-q']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/mnist:cifar.*mnist:dm100, mnist:stn60, mnist:webcam, mnist:none/);
  });
});
