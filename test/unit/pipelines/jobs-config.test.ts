/** The job queue's pure parts: Redis URLs, job options, job data checks, and the root confinement of job paths. */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJobData, confineJobPath, redisConnection, resolveJobOptions } from '../../../pipelines/jobs/index.ts';

describe('redisConnection', () => {
  it('reads host, port, database and credentials from a redis:// URL', () => {
    expect(redisConnection('redis://cam:p%40ss@queue.local:6380/2')).toMatchObject({ host: 'queue.local', port: 6380, db: 2, username: 'cam', password: 'p@ss', maxRetriesPerRequest: null });
    expect(redisConnection('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
    expect(redisConnection('redis://127.0.0.1')).not.toHaveProperty('tls');
  });

  it('turns on TLS for rediss://, checking the host name', () => {
    expect(redisConnection('rediss://:secret@redis.example.org:6380')).toMatchObject({ tls: { servername: 'redis.example.org' }, password: 'secret' });
  });

  it('refuses other schemes and bad databases, naming the value', () => {
    expect(() => redisConnection('http://127.0.0.1:6379')).toThrow(/redis:\/\/ or rediss:\/\/ URL, got 'http:\/\/127\.0\.0\.1:6379'/);
    expect(() => redisConnection('127.0.0.1:6379')).toThrow(/got '127\.0\.0\.1:6379'/);
    expect(() => redisConnection('redis://h/x')).toThrow(/database must be a whole number, got 'x'/);
  });
});

describe('resolveJobOptions', () => {
  it('retries with exponential backoff and keeps finished jobs for status', () => {
    expect(resolveJobOptions()).toEqual({ attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false });
    expect(resolveJobOptions({ attempts: 5, backoffMs: 100 }, 2)).toMatchObject({ attempts: 5, backoff: { delay: 100 }, priority: 2 });
  });

  it('refuses attempts, delays and priorities out of range', () => {
    expect(() => resolveJobOptions({ attempts: 0 })).toThrow(/attempts .* got 0/);
    expect(() => resolveJobOptions({ backoffMs: -1 })).toThrow(/backoffMs .* got -1/);
    expect(() => resolveJobOptions({}, 1.5)).toThrow(/priority .* got 1\.5/);
  });
});

describe('checkJobData', () => {
  it('accepts a video job and an image batch', () => {
    expect(checkJobData({ kind: 'video', inputs: ['a.mp4'], outDir: 'out' }).kind).toBe('video');
    expect(checkJobData({ kind: 'image', inputs: ['a.jpg', 'b.png'], outDir: 'out' }).inputs).toHaveLength(2);
  });

  it('refuses malformed data, naming the field and the value', () => {
    expect(() => checkJobData(null)).toThrow(/job data must be an object, got null/);
    expect(() => checkJobData({ kind: 'shell', inputs: ['a'], outDir: 'o' })).toThrow(/job kind must be video, image, chunk or join, got "shell"/);
    expect(() => checkJobData({ kind: 'video', inputs: [], outDir: 'o' })).toThrow(/inputs must be a non-empty list/);
    expect(() => checkJobData({ kind: 'video', inputs: ['a', 'b'], outDir: 'o' })).toThrow(/one input, got 2/);
    expect(() => checkJobData({ kind: 'video', inputs: [3], outDir: 'o' })).toThrow(/inputs .* got \[3\]/);
    expect(() => checkJobData({ kind: 'image', inputs: ['a'], outDir: 5 })).toThrow(/outDir must be a path, got 5/);
    expect(() => checkJobData({ kind: 'image', inputs: ['a'], outDir: 'o', model: {} })).toThrow(/model must be a name/);
  });
});

describe('confineJobPath', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'camstream-confine-')));
    root = join(dir, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    await writeFile(join(root, 'sub', 'a.mp4'), 'x');
    await writeFile(join(dir, 'outside.mp4'), 'x');
    await symlink(join(dir, 'outside.mp4'), join(root, 'out-link.mp4'));
    await symlink(join(root, 'sub', 'a.mp4'), join(root, 'in-link.mp4'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the real path of a file inside the root, named relative or absolute', async () => {
    expect(await confineJobPath(root, 'sub/a.mp4', 'file', 'input')).toBe(join(root, 'sub', 'a.mp4'));
    expect(await confineJobPath(root, join(root, 'sub', 'a.mp4'), 'file', 'input')).toBe(join(root, 'sub', 'a.mp4'));
    expect(await confineJobPath(root, 'in-link.mp4', 'file', 'input')).toBe(join(root, 'sub', 'a.mp4'));
    expect(await confineJobPath(root, 'sub', 'dir', 'output folder')).toBe(join(root, 'sub'));
  });

  it('refuses .., absolute paths elsewhere, symlinks out of the root, missing files and the wrong kind', async () => {
    await expect(confineJobPath(root, 'sub/../../outside.mp4', 'file', 'input')).rejects.toThrow(/input 'sub\/\.\.\/\.\.\/outside\.mp4' must not contain '\.\.'/);
    await expect(confineJobPath(root, join(dir, 'outside.mp4'), 'file', 'input')).rejects.toThrow(/outside\.mp4' is outside the worker's root/);
    await expect(confineJobPath(root, 'out-link.mp4', 'file', 'input')).rejects.toThrow(/out-link\.mp4' leads outside .*symlink/);
    await expect(confineJobPath(root, 'nope.mp4', 'file', 'input')).rejects.toThrow(/input 'nope\.mp4' does not exist/);
    await expect(confineJobPath(root, 'sub', 'file', 'input')).rejects.toThrow(/'sub' is not a regular file/);
    await expect(confineJobPath(root, 'a\0b', 'file', 'input')).rejects.toThrow(/NUL byte/);
    await expect(confineJobPath(root, '', 'file', 'input')).rejects.toThrow(/input must be a path, got ""/);
  });
});
