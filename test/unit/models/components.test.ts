import { describe, expect, it } from 'vitest';
import { components, type Component } from '../../../models/boxes/internal/work-grid.ts';

/** The plain definition: flood fill from each unvisited matching cell in raster order. */
function reference(mask: Uint8Array, w: number, h: number, value: 0 | 1, connectivity: 4 | 8, weights?: Float32Array): Component[] {
  const seen = new Uint8Array(w * h);
  const out: Component[] = [];
  const steps = connectivity === 8 ? [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]] : [[0, -1], [-1, 0], [1, 0], [0, 1]];
  for (let start = 0; start < w * h; start++) {
    if (seen[start] || mask[start] !== value) continue;
    const c: Component = { minX: w, minY: h, maxX: -1, maxY: -1, count: 0, mass: 0, peak: -Infinity, touchesBorder: false };
    const stack = [start];
    seen[start] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % w;
      const y = Math.floor(p / w);
      c.count++;
      c.minX = Math.min(c.minX, x);
      c.maxX = Math.max(c.maxX, x);
      c.minY = Math.min(c.minY, y);
      c.maxY = Math.max(c.maxY, y);
      if (weights) {
        c.mass += weights[p];
        c.peak = Math.max(c.peak, weights[p]);
      }
      for (const [dx, dy] of steps) {
        const nx = x + dx;
        const ny = y + dy;
        const q = ny * w + nx;
        if (nx >= 0 && nx < w && ny >= 0 && ny < h && !seen[q] && mask[q] === value) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    c.touchesBorder = c.minX === 0 || c.minY === 0 || c.maxX === w - 1 || c.maxY === h - 1;
    out.push(c);
  }
  return out;
}

describe('connected components of a mask', () => {
  it('equal a flood fill on random masks of every density, both connectivities, both values, in the same order', () => {
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let trial = 0; trial < 300; trial++) {
      const w = 1 + Math.floor(rnd() * 40);
      const h = 1 + Math.floor(rnd() * 30);
      const density = rnd();
      // Blobs as well as salt: a smoothed noise field thresholded, or plain noise.
      const mask = Uint8Array.from({ length: w * h }, () => (rnd() < density ? 1 : 0));
      const weights = Float32Array.from({ length: w * h }, () => rnd());
      for (const value of [0, 1] as const) {
        for (const connectivity of [4, 8] as const) {
          const got = components(mask, w, h, value, connectivity, weights).map((c) => ({ ...c }));
          const want = reference(mask, w, h, value, connectivity, weights);
          expect(got.map((c) => [c.minX, c.minY, c.maxX, c.maxY, c.count, c.touchesBorder])).toEqual(want.map((c) => [c.minX, c.minY, c.maxX, c.maxY, c.count, c.touchesBorder]));
          got.forEach((c, i) => {
            expect(c.mass).toBeCloseTo(want[i].mass, 3);
            expect(c.peak).toBe(want[i].peak);
          });
        }
      }
    }
  });

  it('joins diagonal neighbours only with 8-connectivity, and spirals into one component', () => {
    // A diagonal staircase and a spiral whose arms meet only through the row below them.
    const rows = ['1000', '0100', '0010', '0001'];
    const diag = Uint8Array.from(rows.join(''), (ch) => Number(ch));
    expect(components(diag, 4, 4, 1, 8)).toHaveLength(1);
    expect(components(diag, 4, 4, 1, 4)).toHaveLength(4);
    const spiral = ['11111', '00001', '11101', '10001', '11111'];
    const m = Uint8Array.from(spiral.join(''), (ch) => Number(ch));
    const [c, ...rest] = components(m, 5, 5, 1, 4);
    expect(rest).toHaveLength(0);
    expect([c.minX, c.minY, c.maxX, c.maxY, c.count]).toEqual([0, 0, 4, 4, 17]);
    // Its inside reaches the border through the second row: no hole. A closed ring has one.
    expect(components(m, 5, 5, 0, 4).filter((h) => !h.touchesBorder)).toHaveLength(0);
    const ring = Uint8Array.from(['1111', '1001', '1111'].join(''), (ch) => Number(ch));
    expect(components(ring, 4, 3, 0, 4).map((h) => [h.count, h.touchesBorder])).toEqual([[2, false]]);
  });
});
