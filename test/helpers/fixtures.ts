import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Project root (the folder holding package.json). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `../shared/fixtures` beside the project root: real model, photos and videos (never copied in). */
export const FIXTURES = process.env.CAMSTREAM_FIXTURES ?? resolve(ROOT, '..', 'shared', 'fixtures');

export const fixturesPresent = existsSync(join(FIXTURES, 'README.md'));

if (!fixturesPresent) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true but the shared fixtures are missing at ${FIXTURES}: tests that need them cannot run`);
  }
  console.warn(`[camstream tests] fixtures not found at ${FIXTURES}: tests that need them are skipped`);
}

/** Absolute path of a fixture file. */
export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export const DARKNET_TINY = fixture('models', 'darknet_tiny_ml5');
