import { createRandom } from '/work/main/models/builders/random.ts';
import { localize, resolveLocalizeConfig, frameGeometry, CamSmoother, overlayLayout, renderOverlays } from '/work/main/pipelines/index.ts';
import { from, lastValueFrom, toArray } from 'rxjs';
const r = createRandom(1);
const pre = { inputSize: [224, 224], channelOrder: 'rgb', layout: 'nhwc', scale: 1/255, mean: [0,0,0], std: [1,1,1], resize: 'stretch' } as const;
for (const [mh, mw] of [[7, 7], [14, 14]]) {
  const cells = mh * mw;
  const results = Array.from({ length: 200 }, () => ({ ids: Int32Array.from([1,2,3,4,5]), scores: r.normalArray(5, 1), probabilities: Float32Array.from([0.5,0.2,0.1,0.1,0.05]), maps: r.normalArray(5 * cells, 2), mapSize: [mh, mw] as [number, number] }));
  const geo = frameGeometry(1280, 720, pre as any);
  const cfg = resolveLocalizeConfig();
  const s = new CamSmoother();
  const cams = results.map((x) => s.update(x));
  let t0 = performance.now();
  const boxes = cams.map((c) => localize(c, geo, cfg));
  console.log(mh, 'localize ms/frame', ((performance.now() - t0) / 200).toFixed(3));
  const layout = overlayLayout(1280, 720, [mh, mw], pre as any, {});
  console.log(layout);
  const frames = cams.map((c, i) => ({ cams: c, boxes: boxes[i], ms: {} as any }));
  t0 = performance.now();
  const out = await lastValueFrom(from(frames).pipe(renderOverlays(layout, Array.from({length: 10}, (_, i) => `label ${i}`)), toArray()));
  console.log(mh, 'render ms/frame', ((performance.now() - t0) / 200).toFixed(3), out.slice(50).reduce((a, f) => a + f.ms.render, 0) / 150);
}
import { coarseGeometry } from '/work/main/pipelines/index.ts';
{
  const mh = 14, mw = 14, cells = 196;
  const s = new CamSmoother();
  const cams = Array.from({ length: 200 }, () => s.update({ ids: Int32Array.from([1,2,3,4,5]), scores: r.normalArray(5, 1), probabilities: Float32Array.from([0.5,0.2,0.1,0.1,0.05]), maps: r.normalArray(5 * cells, 2), mapSize: [mh, mw] }));
  const geo = frameGeometry(1280, 720, pre as any);
  const g2 = coarseGeometry(geo, 112);
  const cfg = resolveLocalizeConfig();
  const t0 = performance.now();
  let maxd = 0;
  for (const c of cams) { const a = localize(c, geo, cfg); const b = localize(c, g2, cfg); a.forEach((x, i) => { if (x && b[i]) for (let k = 0; k < 4; k++) maxd = Math.max(maxd, Math.abs(x[k] - b[i]![k])); }); }
  console.log('both ms', ((performance.now() - t0)/200).toFixed(2), 'max diff px', maxd);
  const t1 = performance.now(); for (const c of cams) localize(c, g2, cfg); console.log('coarse ms', ((performance.now() - t1)/200).toFixed(2));
}
{
  const mh = 14, mw = 14, cells = 196;
  const s = new CamSmoother();
  const bumpy = () => { const m = new Float32Array(5 * cells); for (let c = 0; c < 5; c++) { const cy = r.uniform() * 14, cx = r.uniform() * 14, sg = 1 + 3 * r.uniform(); for (let y = 0; y < 14; y++) for (let x = 0; x < 14; x++) m[c * cells + y * 14 + x] = 5 * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sg * sg)) - 0.5 + 0.3 * r.normal(); } return m; };
  const cams = Array.from({ length: 200 }, () => s.update({ ids: Int32Array.from([1,2,3,4,5]), scores: r.normalArray(5, 1), probabilities: Float32Array.from([0.5,0.2,0.1,0.1,0.05]), maps: bumpy(), mapSize: [mh, mw] }));
  const geo = frameGeometry(1280, 720, pre as any);
  const g2 = coarseGeometry(geo, 112);
  const cfg = resolveLocalizeConfig();
  const d: number[] = [];
  for (const c of cams) { const a = localize(c, geo, cfg); const b = localize(c, g2, cfg); a.forEach((x, i) => { if (x && b[i]) for (let k = 0; k < 4; k++) d.push(Math.abs(x[k] - b[i]![k])); }); }
  d.sort((a, b) => a - b);
  console.log('smooth maps diff px: median', d[d.length >> 1].toFixed(1), 'p95', d[Math.floor(d.length * 0.95)].toFixed(1), 'max', d[d.length - 1].toFixed(1));
}
