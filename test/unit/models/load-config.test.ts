import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../../common/index.ts';
import { mergeModelFileConfig, parseLabels, parseModelFileConfig } from '../../../models/load/index.ts';

function configError(raw: unknown): ConfigError {
  try {
    parseModelFileConfig(raw, 'camstream.json at /m');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

describe('camstream.json validation', () => {
  it('accepts every documented field and returns only the fields that were set', () => {
    const full = {
      inputSize: [224, 320],
      channelOrder: 'bgr',
      layout: 'nchw',
      scale: 1 / 255,
      mean: [103.9, 116.8, 123.7],
      std: [58.4, 57.1, 57.4],
      resize: 'letterbox',
      labels: 'labels.txt',
      featureTensor: 'conv5_block3_out',
      weights: 'predictions/kernel',
      bias: 'predictions/bias',
    };
    expect(parseModelFileConfig(full, 'x')).toEqual(full);
    expect(parseModelFileConfig({ scale: 2 }, 'x')).toEqual({ scale: 2 });
    expect(parseModelFileConfig(undefined, 'x')).toEqual({});
  });

  it('does not alias the caller object or its arrays', () => {
    const raw = { mean: [1, 2, 3] as [number, number, number] };
    const parsed = parseModelFileConfig(raw, 'x');
    raw.mean[0] = 99;
    expect(parsed.mean).toEqual([1, 2, 3]);
  });

  it.each([
    [{ scale: 'abc' }, 'scale', '"abc"'],
    [{ scale: 0 }, 'scale', '0'],
    [{ scale: Number.NaN }, 'scale', 'NaN'],
    [{ inputSize: [0, 224] }, 'inputSize', '[0,224]'],
    [{ inputSize: [224] }, 'inputSize', '[224]'],
    [{ inputSize: [224.5, 224] }, 'inputSize', '[224.5,224]'],
    [{ channelOrder: 'RGB' }, 'channelOrder', '"RGB"'],
    [{ layout: 'chw' }, 'layout', '"chw"'],
    [{ mean: [1, 2] }, 'mean', '[1,2]'],
    [{ std: [1, 0, 1] }, 'std', '[1,0,1]'],
    [{ resize: 'crop' }, 'resize', '"crop"'],
    [{ labels: '' }, 'labels', '""'],
    [{ featureTensor: 3 }, 'featureTensor', '3'],
  ])('rejects %j naming the field, the value and what is allowed', (raw, field, shown) => {
    const err = configError(raw);
    expect(err.message).toContain(`'${field}'`);
    expect(err.message).toContain(shown);
    expect(err.message).toContain('allowed:');
    expect(err.message).toContain('camstream.json at /m');
    expect(err.code).toBe('CONFIG');
  });

  it('rejects an unknown (misspelt) field and lists the allowed ones', () => {
    const err = configError({ inputsize: [224, 224] });
    expect(err.message).toContain("unknown field 'inputsize'");
    expect(err.message).toContain('inputSize');
  });

  it('rejects a value that is not an object', () => {
    expect(configError([1, 2]).message).toContain('[1,2]');
    expect(configError('rgb').message).toContain('"rgb"');
  });

  it('lets LoadOptions.config win field by field', () => {
    const merged = mergeModelFileConfig({ scale: 1, inputSize: [224, 224], labels: 'a.txt' }, { inputSize: [192, 192] });
    expect(merged).toEqual({ scale: 1, inputSize: [192, 192], labels: 'a.txt' });
  });
});

describe('labels files', () => {
  it('gives one label per line, keeping inner blank lines and dropping trailing ones and CRs', () => {
    expect(parseLabels('\uFEFFkit fox\r\nEnglish setter\r\n\r\nzebra\n\n\n')).toEqual([
      'kit fox',
      'English setter',
      '',
      'zebra',
    ]);
    expect(parseLabels('')).toEqual([]);
  });
});
