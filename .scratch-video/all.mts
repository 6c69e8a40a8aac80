import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from '/work/main/models/index.ts';
import { annotateVideo, probeMedia, locateFfmpeg } from '/work/main/pipelines/index.ts';
import { writeRandomOnnx } from '/work/main/test/integration/video-helpers.ts';
const dir = mkdtempSync(join(tmpdir(), 'cv-'));
const model = await load(await writeRandomOnnx(dir), { threads: 1 });
console.log(model.info);
const tools = await locateFfmpeg();
for (const f of ['kivy_cityCC0.mpg','node-opencv_motion.mov','opencv_vtest.avi']) {
  const input = '/work/shared/fixtures/video/'+f;
  const t0 = performance.now();
  const r = await annotateVideo(model, input, { out: join(dir, f + '.mp4'), json: join(dir, f + '.jsonl'), tools, preset: process.env.PRESET ?? 'veryfast' });
  const pin = await probeMedia(input, { tools, countFrames: 'always' });
  const pout = await probeMedia(r.out, { tools, countFrames: 'always' });
  console.log(f, r.frames, 'in', pin.frameCount, pin.duration, 'out', pout.frameCount, pout.duration, pout.hasAudio, (performance.now()-t0).toFixed(0), 'ms', r.fps.toFixed(1), 'fps', JSON.stringify(r.stages), r.batchFrames, r.smooth);
}
await model.dispose();
