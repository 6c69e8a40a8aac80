import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/index.ts';
import {
  buildDecodeArgs,
  parseLogLine,
  parseRational,
  rationalFromDecimal,
  resolveDecodeConfig,
  resolveInput,
  shellQuote,
  toRational,
  type SizedOutput,
} from '../../../pipelines/ffmpeg/index.ts';

const OLD = { passthroughArgs: ['-vsync', 'passthrough'], passthroughPerOutput: false };
const NEW = { passthroughArgs: ['-fps_mode', 'passthrough'], passthroughPerOutput: true };

function sized(config: ReturnType<typeof resolveDecodeConfig>, full: [number, number]): SizedOutput[] {
  return config.outputs.map((o) => ({ ...o, width: o.width ?? full[0], height: o.height ?? full[1] }));
}

describe('resolveInput', () => {
  it('makes file paths absolute and allows only the file protocol for them', () => {
    const r = resolveInput('clips/a.mp4');
    expect(r.url).toBe(resolve('clips/a.mp4'));
    expect(r.scheme).toBe('file');
    expect(r.protocolWhitelist).toBe('file');
    expect(resolveInput(pathToFileURL('/tmp/x y.mov').href).url).toBe('/tmp/x y.mov');
  });

  it('treats a Windows drive letter as a path, not a scheme', () => {
    expect(resolveInput('C:\\videos\\a.mp4').scheme).toBe('file');
  });

  it('passes whitelisted URLs with the protocols underneath them', () => {
    expect(resolveInput('https://example.com/a.mp4').protocolWhitelist).toBe('https,tls,tcp');
    expect(resolveInput('http://example.com/a.mp4').protocolWhitelist).toBe('http,tcp');
    expect(resolveInput('rtsp://cam.local:554/stream').protocolWhitelist).toContain('rtp');
  });

  it('rejects other schemes with a ConfigError naming the scheme', () => {
    for (const [input, scheme] of [
      ['ftp://example.com/a.mp4', 'ftp'],
      ['concat:a.mp4|b.mp4', 'concat'],
      ['data:video/mp4;base64,AAAA', 'data'],
      ['pipe:0', 'pipe'],
    ] as const) {
      expect(() => resolveInput(input)).toThrow(ConfigError);
      expect(() => resolveInput(input)).toThrow(`'${scheme}:'`);
    }
  });

  it('honours a narrower allowed list', () => {
    expect(() => resolveInput('rtsp://cam/s', ['file', 'http'])).toThrow(/'rtsp:'.*allowed: file, http/);
    expect(() => resolveInput('/tmp/a.mp4', ['rtsp'])).toThrow(/file inputs are not allowed/);
  });
});

describe('resolveDecodeConfig', () => {
  it('fills documented defaults', () => {
    const c = resolveDecodeConfig({ width: 224, height: 224 });
    expect(c.outputs).toEqual([{ width: 224, height: 224, pixFmt: 'rgb24', fit: 'stretch', scaleFlags: 'bilinear' }]);
    expect(c.maxBufferedFrames).toBe(8);
    expect(c.timestamps).toBe('pts');
  });

  it('names the field and value of bad options', () => {
    expect(() => resolveDecodeConfig({ width: 224 })).toThrow(/decode.width and decode.height must be given together/);
    expect(() => resolveDecodeConfig({ width: 0, height: 10 })).toThrow(/decode.width must be an integer in \[1, 16384\], got 0/);
    expect(() => resolveDecodeConfig({ fps: 0 })).toThrow(/fps must be a positive frame rate.*got 0/);
    expect(() => resolveDecodeConfig({ scaleFlags: 'bilinear,movie=/etc/passwd' })).toThrow(/scaleFlags/);
    expect(() => resolveDecodeConfig({ filter: 'null[x];[x]null' })).toThrow(/filter must be a non-empty single filter chain/);
    expect(() => resolveDecodeConfig({ extraOutputs: [{ pixFmt: 'yuv420p' as never }] })).toThrow(/extraOutputs\[0\].pixFmt/);
    expect(() => resolveDecodeConfig({ maxBufferedFrames: 0 })).toThrow(/maxBufferedFrames/);
  });
});

describe('buildDecodeArgs', () => {
  const input = resolveInput('/videos/in.mp4');

  it('builds one raw output with showinfo timing and global -vsync for ffmpeg 4', () => {
    const c = resolveDecodeConfig({ width: 224, height: 224 });
    const args = buildDecodeArgs(input, c, sized(c, [640, 360]), OLD);
    expect(args).toEqual([
      '-threads', '0', '-protocol_whitelist', 'file', '-i', '/videos/in.mp4', '-vsync', 'passthrough',
      '-filter_complex', '[0:v:0]showinfo=checksum=0,scale=224:224:flags=bilinear,format=rgb24[o0]',
      '-map', '[o0]', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
    ]);
  });

  it('splits into a scaled and a full-size output on fds 1 and 3, per-output passthrough for ffmpeg 5.1+', () => {
    const c = resolveDecodeConfig({ width: 224, height: 224, fps: 10, extraOutputs: [{}], maxFrames: 5, startSeconds: 2 });
    const args = buildDecodeArgs(input, c, sized(c, [640, 360]), NEW);
    const graph = args[args.indexOf('-filter_complex') + 1];
    expect(graph).toBe(
      '[0:v:0]fps=fps=10/1,showinfo=checksum=0,split=2[s0][s1];[s0]scale=224:224:flags=bilinear,format=rgb24[o0];[s1]format=rgb24[o1]',
    );
    expect(args.filter((a) => a === '-fps_mode')).toHaveLength(2);
    expect(args).not.toContain('-vsync');
    expect(args.slice(args.indexOf('-ss'), args.indexOf('-ss') + 2)).toEqual(['-ss', '2']);
    expect(args.indexOf('-ss')).toBeLessThan(args.indexOf('-i'));
    expect(args.filter((a) => a === '-frames:v')).toHaveLength(2);
    expect(args.at(-1)).toBe('pipe:3');
  });

  it('letterboxes with pad when fit is pad and drops showinfo in rate mode', () => {
    const c = resolveDecodeConfig({ width: 100, height: 100, fit: 'pad', timestamps: 'rate', pixFmt: 'gray' });
    const args = buildDecodeArgs(input, c, sized(c, [640, 360]), OLD);
    const graph = args[args.indexOf('-filter_complex') + 1];
    expect(graph).toBe(
      '[0:v:0]scale=100:100:force_original_aspect_ratio=decrease:flags=bilinear,format=gray,pad=100:100:(ow-iw)/2:(oh-ih)/2[o0]',
    );
  });
});

describe('parseLogLine', () => {
  it('splits context, level and message of level-tagged lines', () => {
    expect(parseLogLine('[mov,mp4,m4a,3gp,3g2,mj2 @ 0x241a31c0] [error] moov atom not found', 'info')).toEqual({
      level: 'error',
      context: 'mov,mp4,m4a,3gp,3g2,mj2',
      message: 'moov atom not found',
    });
    expect(parseLogLine('[error] in.mp4: No such file or directory', 'info')).toEqual({
      level: 'error',
      context: undefined,
      message: 'in.mp4: No such file or directory',
    });
    expect(parseLogLine('   continued text', 'warning').level).toBe('warning');
  });
});

describe('rationals', () => {
  it('parses ffprobe rates and rejects unknown ones', () => {
    expect(parseRational('30000/1001')).toEqual({ num: 30000, den: 1001 });
    expect(parseRational('50/2')).toEqual({ num: 25, den: 1 });
    expect(parseRational('0/0')).toBeUndefined();
    expect(parseRational('N/A')).toBeUndefined();
  });

  it('recovers exact rates from the two decimals ffmpeg prints', () => {
    expect(rationalFromDecimal(29.97)).toEqual({ num: 30000, den: 1001 });
    expect(rationalFromDecimal(23.98)).toEqual({ num: 24000, den: 1001 });
    expect(rationalFromDecimal(59.94)).toEqual({ num: 60000, den: 1001 });
    expect(rationalFromDecimal(12.5)).toEqual({ num: 25, den: 2 });
    expect(rationalFromDecimal(25)).toEqual({ num: 25, den: 1 });
  });

  it('validates rates given by callers', () => {
    expect(toRational({ num: 60, den: 2 }, 'fps')).toEqual({ num: 30, den: 1 });
    expect(() => toRational(-1, 'encode.fps')).toThrow(/encode.fps must be a positive frame rate/);
  });
});

describe('shellQuote', () => {
  it('quotes only what a shell would split or expand', () => {
    expect(shellQuote('pipe:1')).toBe('pipe:1');
    expect(shellQuote('[0:v:0]scale=1:1[o0]')).toBe(`'[0:v:0]scale=1:1[o0]'`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
