/**
 * Small checks every layer uses when it resolves a config: each throws a ConfigError that names the field,
 * the bad value and the allowed range, so the caller's message needs no wrapping.
 */
import { ConfigError } from './errors.ts';

/** `value` as an integer in [min, max], or a ConfigError naming `field`. */
export function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/** A shallow copy of `o` without its undefined fields, so spreading it over defaults keeps the defaults. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
