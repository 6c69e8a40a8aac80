/**
 * Media-root confinement with real ffmpeg, through the path `serve` takes (hub -> probe -> file source ->
 * decode): a file inside the media root that is an HLS playlist or an ffconcat script naming a clip
 * outside the root is refused with an error that says why, whatever its name; a real clip still plays.
 */
import '@tensorflow/tfjs-backend-cpu';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type CamModel } from '../../models/index.ts';
import { activeFfmpegPids, type FfmpegTools } from '../../pipelines/index.ts';
import type { ServerMessage } from '../../protocol/index.ts';
import { testFfmpeg } from '../helpers/ffmpeg.ts';
import { connectViewer, disposeAll, makeClip, startTestServer, tempDir } from './server-harness.ts';
import { writeRandomLayers } from './video-helpers.ts';

let media: string;
let outside: string;
let model: CamModel;
let tools: FfmpegTools;

beforeAll(async () => {
  const dir = await tempDir('camstream-confine-');
  tools = await testFfmpeg();
  media = join(dir, 'media');
  await mkdir(media);
  model = await load(await writeRandomLayers(dir), { engine: 'tfjs', backend: 'cpu' });
  outside = await makeClip(dir, 'outside.mp4', { seconds: 2, fps: 25 });
  await makeClip(media, 'inside.mp4', { seconds: 2, fps: 25 });
  // An HLS playlist named like a video, listing the outside clip by absolute path.
  await writeFile(join(media, 'playlist.mp4'), `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${outside}\n#EXT-X-ENDLIST\n`);
  await writeFile(join(media, 'playlist.m3u8'), `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${outside}\n#EXT-X-ENDLIST\n`);
  // An ffconcat script (ffmpeg's concat demuxer), once by absolute path and once relative, out of the root.
  await writeFile(join(media, 'list.mp4'), `ffconcat version 1.0\nfile '${outside}'\n`);
  await writeFile(join(media, 'relative.ffconcat'), `ffconcat version 1.0\nfile '../outside.mp4'\n`);
});
afterAll(async () => {
  await disposeAll();
  await model?.dispose();
});

const isError = (m: ServerMessage): boolean => m.type === 'error';

describe('media-root files are confined to themselves', () => {
  for (const name of ['playlist.mp4', 'playlist.m3u8', 'list.mp4', 'relative.ffconcat']) {
    it(`refuses ${name}, which names a clip outside the media root, saying it is a playlist`, async () => {
      const server = await startTestServer({ model, sources: { mediaRoot: media, tools } });
      const v = await connectViewer(server);
      v.send({ type: 'select', source: { kind: 'file', path: name } });
      const err = (await v.waitFor(isError)) as ServerMessage & { type: 'error'; message: string };
      expect(err.message).toContain(name);
      // camstream's refusal; older builds (the npm one) already refuse an HLS playlist under another extension.
      expect(err.message).toMatch(/(hls|concat) file \(a playlist or list of other files\), refused|Not detecting m3u8\/hls with non standard extension/);
      expect(v.results).toEqual([]);
      expect(server.stats().sources).toEqual([]);
      expect(activeFfmpegPids()).toEqual([]);
    });
  }

  it('still plays a real clip inside the media root', async () => {
    const server = await startTestServer({ model, sources: { mediaRoot: media, tools } });
    const v = await connectViewer(server);
    v.send({ type: 'select', source: { kind: 'file', path: 'inside.mp4' } });
    await v.waitForResults(5);
    expect(v.messages.some(isError)).toBe(false);
  });
});
