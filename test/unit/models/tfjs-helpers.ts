/** Shared by the tfjs-*.test.ts files: temporary model folders, hand-made sources, the CAM identity. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CamResult, ModelFileConfig, ResolvedSource } from '../../../models/index.ts';

/** A fresh temporary folder; `cleanup()` removes all made so far (call it in afterAll). */
export function tempFolders(): { make(prefix?: string): Promise<string>; cleanup(): Promise<void> } {
  const made: string[] = [];
  return {
    async make(prefix = 'camstream-tfjs-') {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** A ResolvedSource as `models/load/` would give it, built by hand. */
export function tfjsSource(path: string, fileConfig: ModelFileConfig = {}, labels?: string[]): ResolvedSource {
  return { format: 'tfjs', path, original: path, fileConfig, labels };
}

/**
 * Worst relative error of the CAM identity over all returned classes of all frames:
 * mean over positions of M_c + b_c = logit_c (ref: Zhou et al. 2016, sec. 2). Relative to max(1, |logit|).
 */
export function camIdentityError(results: readonly CamResult[], bias: Float32Array): number {
  let worst = 0;
  for (const r of results) {
    const [h, w] = r.mapSize;
    const hw = h * w;
    for (let j = 0; j < r.ids.length; j++) {
      let sum = 0;
      for (let p = 0; p < hw; p++) sum += r.maps[j * hw + p];
      const lhs = sum / hw + bias[r.ids[j]];
      worst = Math.max(worst, Math.abs(lhs - r.scores[j]) / Math.max(1, Math.abs(r.scores[j])));
    }
  }
  return worst;
}

/** Indices of the k largest values, best first. */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, i]) => i);
}
