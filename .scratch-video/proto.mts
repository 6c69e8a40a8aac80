import { locateFfmpeg, probeMedia, decodeFrames$, encodeVideo } from '/work/main/pipelines/ffmpeg/index.ts';
import { lastValueFrom, toArray } from 'rxjs';
const tools = await locateFfmpeg();
for (const f of ['kivy_cityCC0.mpg','node-opencv_motion.mov']) {
  const input = '/work/shared/fixtures/video/'+f;
  const info = await probeMedia(input, { tools, countFrames: 'always' });
  const frames = await lastValueFrom(decodeFrames$(input, { tools, width: 32, height: 32 }).pipe(toArray()));
  console.log(f, 'decoded', frames.length, frames.slice(0,3).map(x=>x.pts), frames.slice(-3).map(x=>x.pts));
  const W = info.displayWidth, H = info.displayHeight;
  const R = `${info.frameRate.num}/${info.frameRate.den}`;
  const ow = 320, oh = 180 & ~1, hw = 224, hh = 126;
  const pw = Math.max(ow, hw), ph = oh + hh;
  const fc = `[0:v]settb=1/(${R}),setpts=N,format=yuva420p,split=2[a][b];[a]crop=${ow}:${oh}:0:0,scale=${W}:${H}[ann];[b]crop=${hw}:${hh}:0:${oh},scale=${W}:${H}[heat];` +
    `[1:v]settb=1/(${R}),setpts=N[base];[base][heat]overlay=format=yuv420[t];[t][ann]overlay=format=yuv420,pad=ceil(iw/2)*2:ceil(ih/2)*2[vout]`;
  const t0 = performance.now();
  const enc = await encodeVideo({ out: `/tmp/proto-${f}.mp4`, width: pw, height: ph, fps: info.frameRate, inputPixFmt: 'rgba', inputs: [{ input }], filterComplex: fc, audioFrom: input, tools });
  console.log(enc.commandLine);
  const buf = new Uint8Array(pw*ph*4);
  for (let i = 0; i < pw*ph; i++) { buf[i*4] = 255; buf[i*4+3] = i < pw*oh ? 0 : 128; }
  for (let i = 0; i < frames.length; i++) await enc.write(buf);
  const r = await enc.finish();
  const out = await probeMedia(r.out, { tools, countFrames: 'always' });
  console.log(f, 'in', info.frameCount, info.duration, 'out', out.frameCount, out.duration, out.frameRate, out.hasAudio, out.audioCodec, (performance.now()-t0).toFixed(0), 'ms');
}
