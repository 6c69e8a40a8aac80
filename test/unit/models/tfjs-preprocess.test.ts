import { describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '../../../common/index.ts';
import { DEFAULT_PREPROCESS, fitGeometry, inputToFrame, resolvePreprocess } from '../../../models/index.ts';

describe('resolvePreprocess', () => {
  it('defaults to pixel/255 RGB stretch at the model input size', () => {
    const pre = resolvePreprocess({}, { inputSize: [224, 160], layout: 'nhwc' });
    expect(pre).toEqual({
      inputSize: [224, 160],
      channelOrder: 'rgb',
      layout: 'nhwc',
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      resize: 'stretch',
      resizeFilter: 'triangle',
      normalization: 'default',
    });
    expect(Object.isFrozen(pre)).toBe(true);
    expect(DEFAULT_PREPROCESS.scale).toBeCloseTo(1 / 255, 12);
  });

  it('lets camstream.json fields win over defaults and the model layout', () => {
    const pre = resolvePreprocess(
      { inputSize: [96, 128], channelOrder: 'bgr', layout: 'nchw', scale: 1, mean: [103.9, 116.8, 123.7], std: [58, 57, 57.4], resize: 'letterbox' },
      { layout: 'nhwc' },
    );
    expect(pre.inputSize).toEqual([96, 128]);
    expect(pre.channelOrder).toBe('bgr');
    expect(pre.layout).toBe('nchw');
    expect(pre.mean).toEqual([103.9, 116.8, 123.7]);
    expect(pre.std).toEqual([58, 57, 57.4]);
    expect(pre.resize).toBe('letterbox');
  });

  it('needs an input size from the model or the config', () => {
    expect(() => resolvePreprocess({}, { layout: 'nhwc' })).toThrow(ConfigError);
    expect(() => resolvePreprocess({}, { layout: 'nhwc' })).toThrow(/inputSize/);
    expect(resolvePreprocess({ inputSize: [64, 64] }, { layout: 'nhwc' }).inputSize).toEqual([64, 64]);
  });

  it('rejects a configured size that contradicts the model', () => {
    expect(() => resolvePreprocess({ inputSize: [256, 256] }, { inputSize: [224, 224], layout: 'nhwc' })).toThrow(
      /inputSize.*\[256,256\].*\[224,224\]/,
    );
  });

  it.each([
    ['scale', { scale: 0 }, /'scale'.*0/],
    ['scale', { scale: Number.NaN }, /'scale'/],
    ['std', { std: [1, 0, 1] }, /'std'.*\[1,0,1\].*> 0/],
    ['mean', { mean: [1, 2] }, /'mean'.*\[1,2\]/],
    ['channelOrder', { channelOrder: 'rbg' }, /'channelOrder'.*"rbg".*'rgb', 'bgr'/],
    ['resize', { resize: 'crop' }, /'resize'.*"crop"/],
    ['layout', { layout: 'hwc' }, /'layout'.*"hwc"/],
    ['inputSize', { inputSize: [0, 10] }, /'inputSize'.*\[0,10\].*8192/],
    ['inputSize', { inputSize: [10.5, 10] }, /'inputSize'/],
  ])('rejects a bad %s, naming field, value and range', (_f, cfg, pattern) => {
    const run = (): unknown => resolvePreprocess(cfg as never, { inputSize: [10, 10], layout: 'nhwc' });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(pattern);
  });
});

describe('fitGeometry', () => {
  it('stretch maps the input corners to the frame corners', () => {
    const g = fitGeometry(640, 480, { inputSize: [224, 224], resize: 'stretch' });
    expect(g.contentSize).toEqual([224, 224]);
    expect([g.padTop, g.padLeft, g.padBottom, g.padRight]).toEqual([0, 0, 0, 0]);
    expect(inputToFrame(g, 0, 0)).toEqual([0, 0]);
    expect(inputToFrame(g, 224, 224)).toEqual([640, 480]);
    expect(inputToFrame(g, 112, 56)).toEqual([320, 120]);
  });

  it('letterbox keeps the aspect ratio, centres the content and maps back', () => {
    const g = fitGeometry(640, 480, { inputSize: [224, 224], resize: 'letterbox' });
    expect(g.contentSize).toEqual([168, 224]);
    expect(g.padTop).toBe(28);
    expect(g.padBottom).toBe(28);
    expect(g.padLeft).toBe(0);
    expect(g.scaleX).toBeCloseTo(640 / 224, 12);
    expect(g.scaleY).toBeCloseTo(480 / 168, 12);
    expect(inputToFrame(g, 0, 28)).toEqual([0, 0]);
    const [x, y] = inputToFrame(g, 224, 28 + 168);
    expect(x).toBeCloseTo(640, 9);
    expect(y).toBeCloseTo(480, 9);
  });

  it('letterbox of a tall frame pads left and right, the odd pixel on the right', () => {
    const g = fitGeometry(100, 301, { inputSize: [64, 64], resize: 'letterbox' });
    expect(g.contentSize[0]).toBe(64);
    expect(g.contentSize[1]).toBe(Math.round(100 * (64 / 301)));
    expect(g.padLeft + g.contentSize[1] + g.padRight).toBe(64);
    expect(g.padRight - g.padLeft).toBe((64 - g.contentSize[1]) % 2);
  });

  it('rejects a frame size that is not two positive integers', () => {
    expect(() => fitGeometry(0, 10, { inputSize: [8, 8], resize: 'stretch' })).toThrow(InputError);
    expect(() => fitGeometry(10.5, 10, { inputSize: [8, 8], resize: 'stretch' })).toThrow(/10.5x10/);
  });
});
