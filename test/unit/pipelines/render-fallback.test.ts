import { describe, expect, it, vi } from 'vitest';

// librsvg builds without text support (or with a broken font setup) fail on <text>; simulate that by
// making sharp refuse any SVG holding text, and check the renderer still draws the boxes.
vi.mock('sharp', async (importOriginal) => {
  const real = ((await importOriginal()) as { default: typeof import('sharp').default }).default;
  const wrapped = ((input?: unknown, options?: unknown) => {
    if (Buffer.isBuffer(input) && input.includes('<text')) throw new Error('text rendering unavailable');
    return (real as (i?: unknown, o?: unknown) => ReturnType<typeof real>)(input, options);
  }) as unknown as typeof real;
  Object.assign(wrapped, real);
  return { default: wrapped };
});

const { renderOverlay } = await import('../../../pipelines/render/index.ts');

describe('renderOverlay when text cannot be rendered', () => {
  it('warns and still draws the box outlines', async () => {
    const warnings: string[] = [];
    const frame = { data: new Uint8Array(200 * 100 * 3).fill(128), width: 200, height: 100 };
    const pipeline = await renderOverlay({
      image: frame,
      map: new Float32Array(4),
      mapSize: [2, 2],
      alpha: 0,
      lineWidth: 4,
      boxes: [{ box: [50, 20, 150, 80], label: 'cat', score: 0.9, colour: '#00ff00' }],
      topLabels: [{ label: 'cat', score: 0.9 }],
      onWarning: (m) => warnings.push(m),
    });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/text.*boxes only/);
    expect(at(50, 50)[1]).toBeGreaterThan(200);
    expect(at(50, 50)[0]).toBeLessThan(60);
    // No top-k panel was drawn.
    expect(at(5, 5)).toEqual([128, 128, 128]);
  });
});
