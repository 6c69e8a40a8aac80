import { describe, expect, it } from 'vitest';
import { CamstreamError, checkInt, ConfigError, stripUndefined } from '../../../common/index.ts';

describe('checkInt', () => {
  it('returns integers inside the range, bounds included', () => {
    expect(checkInt('threads', 1, 1, 8)).toBe(1);
    expect(checkInt('threads', 8, 1, 8)).toBe(8);
    expect(checkInt('offset', -3, -5, 5)).toBe(-3);
    expect(checkInt('count', 0, 0, 0)).toBe(0);
  });

  it.each([
    ['below the range', 0],
    ['above the range', 9],
    ['a fraction', 2.5],
    ['NaN', Number.NaN],
    ['infinity', Number.POSITIVE_INFINITY],
    ['a numeric string', '3'],
    ['undefined', undefined],
    ['null', null],
  ])('rejects %s with a ConfigError naming the field, the value and the range', (_what, value) => {
    let caught: unknown;
    try {
      checkInt('threads', value, 1, 8);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(caught).toBeInstanceOf(CamstreamError);
    const message = (caught as Error).message;
    expect(message).toContain('threads');
    expect(message).toContain('[1, 8]');
    expect(message).toContain(String(value));
  });
});

describe('stripUndefined', () => {
  it('drops only the undefined fields and keeps falsy values', () => {
    const out = stripUndefined({ a: undefined, b: 0, c: false, d: '', e: null, f: 'x' });
    expect(out).toEqual({ b: 0, c: false, d: '', e: null, f: 'x' });
    expect(Object.keys(out)).not.toContain('a');
  });

  it('lets a spread over defaults keep the defaults for fields left undefined', () => {
    const defaults = { fps: 30, alpha: 0.5, label: 'none' };
    const given: { fps?: number; alpha?: number; label?: string } = { fps: undefined, alpha: 0.25 };
    expect({ ...defaults, ...given }.fps).toBeUndefined();
    expect({ ...defaults, ...stripUndefined(given) }).toEqual({ fps: 30, alpha: 0.25, label: 'none' });
  });

  it('returns a new object and leaves its input untouched', () => {
    const input = { a: 1, b: undefined };
    const out = stripUndefined(input);
    expect(out).not.toBe(input);
    expect(input).toEqual({ a: 1, b: undefined });
    expect('b' in input).toBe(true);
  });
});
