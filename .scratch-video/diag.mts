import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { decodeFrames$ } from '/work/main/pipelines/ffmpeg/index.ts';
const dir = mkdtempSync(join(tmpdir(), 'cv-'));
const w2 = readFileSync('/work/shared/fixtures/video/kivy_cityCC0.mpg');
writeFileSync(join(dir, 't.mpg'), w2.subarray(0, Math.floor(w2.length * 0.5)));
const w3 = readFileSync('/work/shared/fixtures/video/node-opencv_motion.mov');
for (const f of [join(dir, 't.mpg'), ...['kivy_cityCC0.mpg','node-opencv_motion.mov','opencv_vtest.avi'].map(x => '/work/shared/fixtures/video/' + x)]) {
  const diags: string[] = [];
  const fr = await lastValueFrom(decodeFrames$(f, { width: 16, height: 16, strict: true, onDiagnostic: (m) => diags.push(m) }).pipe(toArray()));
  console.log(f, fr.length, diags.slice(0, 5));
}
