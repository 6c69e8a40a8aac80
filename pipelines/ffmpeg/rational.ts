import { ConfigError } from '../../models/index.ts';

/** An exact frame rate or time base, `num / den`. */
export interface Rational {
  num: number;
  den: number;
}

/** Parses `30000/1001`, `25/1` or `25`; undefined for `0/0`, `N/A`, non-positive or malformed values. */
export function parseRational(text: string | undefined): Rational | undefined {
  if (!text) return undefined;
  const m = /^\s*(\d+)(?:\s*[/:]\s*(\d+))?\s*$/.exec(text);
  if (!m) return undefined;
  const num = Number(m[1]);
  const den = m[2] === undefined ? 1 : Number(m[2]);
  if (!(num > 0) || !(den > 0)) return undefined;
  return reduce({ num, den });
}

export function rationalValue(r: Rational): number {
  return r.num / r.den;
}

export function formatRational(r: Rational): string {
  return `${r.num}/${r.den}`;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function reduce(r: Rational): Rational {
  const g = gcd(r.num, r.den) || 1;
  return { num: r.num / g, den: r.den / g };
}

/**
 * The rational behind a rounded decimal rate as `ffmpeg -i` prints it (`29.97`, `23.98`, `12.5`): the
 * NTSC family (`n*1000/1001`) first, then the smallest denominator within the printed precision.
 */
export function rationalFromDecimal(value: number, tolerance = 0.006): Rational | undefined {
  if (!(value > 0) || !Number.isFinite(value)) return undefined;
  if (Math.abs(value - Math.round(value)) < 1e-9) return { num: Math.round(value), den: 1 };
  const ntsc = Math.round((value * 1001) / 1000);
  if (Math.abs((ntsc * 1000) / 1001 - value) < tolerance) return { num: ntsc * 1000, den: 1001 };
  for (let den = 1; den <= 1000; den++) {
    const num = Math.round(value * den);
    if (num > 0 && Math.abs(num / den - value) < tolerance / 10) return reduce({ num, den });
  }
  return reduce({ num: Math.round(value * 1000), den: 1000 });
}

/** Accepts a number (`25`, `29.97`) or a Rational and returns a reduced Rational; `field` names errors. */
export function toRational(value: number | Rational, field: string): Rational {
  const r = typeof value === 'number' ? rationalFromDecimal(value) : value;
  if (
    !r ||
    !Number.isInteger(r.num) ||
    !Number.isInteger(r.den) ||
    r.num <= 0 ||
    r.den <= 0 ||
    r.num / r.den > 1000
  ) {
    const shown = typeof value === 'number' ? String(value) : `${value.num}/${value.den}`;
    throw new ConfigError(`${field} must be a positive frame rate up to 1000 (a number or {num, den} integers), got ${shown}`);
  }
  return reduce(r);
}
