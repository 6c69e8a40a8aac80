import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from '/work/main/models/index.ts';
import { annotateVideo } from '/work/main/pipelines/index.ts';
import { writeRandomOnnx } from '/work/main/test/integration/video-helpers.ts';
const dir = mkdtempSync(join(tmpdir(), 'cv-'));
const model = await load(await writeRandomOnnx(dir), { threads: 1 });
const whole = readFileSync('/work/shared/fixtures/video/opencv_vtest.avi');
writeFileSync(join(dir, 't.avi'), whole.subarray(0, Math.floor(whole.length * 0.3)));
const w2 = readFileSync('/work/shared/fixtures/video/kivy_cityCC0.mpg');
writeFileSync(join(dir, 't.mpg'), w2.subarray(0, Math.floor(w2.length * 0.5)));
for (const f of ['t.avi', 't.mpg']) {
  const e = await annotateVideo(model, join(dir, f), { out: join(dir, f + '.mp4'), preset: 'ultrafast' }).then(r => 'OK ' + r.frames, (e) => e.message);
  console.log(f, e);
}
await new Promise(r => setTimeout(r, 500));
console.log(readdirSync(dir));
await model.dispose();
