/**
 * The leaf every folder may use: the error base class and its subclasses, small config checks, and the
 * seeded PRNGs, and a browser-safe percentile (stats.ts). Nothing here imports another camstream folder.
 */
export * from './errors.ts';
export { checkInt, stripUndefined } from './checks.ts';
export * from './rng.ts';
export { percentile } from './stats.ts';
