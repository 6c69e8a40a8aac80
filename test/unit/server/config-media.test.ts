import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../models/index.ts';
import { confineMediaPath, isLoopbackHost, listMedia, MediaPathError, resolveServerConfig, tokensEqual } from '../../../server/index.ts';

describe('resolveServerConfig', () => {
  it('listens on 127.0.0.1:8080 by default', () => {
    expect(resolveServerConfig()).toMatchObject({ http: { host: '127.0.0.1', port: 8080, token: undefined } });
  });

  it.each(['0.0.0.0', '::', '192.168.1.20', 'example.org'])('refuses the non-loopback host %s without a token', (host) => {
    expect(() => resolveServerConfig({ http: { host } })).toThrow(ConfigError);
    expect(() => resolveServerConfig({ http: { host } })).toThrow(/refusing to listen on .* without a token/);
    expect(resolveServerConfig({ http: { host, token: 'a-long-secret' } }).http.host).toBe(host);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'localhost.example.org']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('takes a bracketed IPv6 host and listens on the bare address', () => {
    expect(resolveServerConfig({ http: { host: '[::1]' } }).http.host).toBe('::1');
    expect(() => resolveServerConfig({ http: { host: '[localhost]' } })).toThrow(/\[localhost\] has brackets but no IPv6 address/);
  });

  it('keeps URL sources off and private URLs refused by default, with caps on connections and opens', () => {
    const c = resolveServerConfig();
    expect(c.sources).toMatchObject({ urlSources: false, privateUrls: false, maxOpening: 4, maxOpeningPerAddress: 2 });
    expect(c.limits).toMatchObject({ maxConnections: 128, maxConnectionsPerAddress: 64, maxPartialBytes: 16 << 20, maxMessageFragments: 64 });
    expect(() => resolveServerConfig({ limits: { maxConnections: 0 } })).toThrow(/maxConnections must be an integer in \[1, 100000\], got 0/);
  });

  it('names the bad field and its range', () => {
    expect(() => resolveServerConfig({ http: { port: 70000 } })).toThrow(/port must be an integer in \[0, 65535\], got 70000/);
    expect(() => resolveServerConfig({ http: { token: 'short' } })).toThrow(/token must be 8 to 256/);
    expect(() => resolveServerConfig({ live: { settings: { smoothing: 1 } } })).toThrow(/smoothing/);
  });

  it('compares tokens by content only', () => {
    expect(tokensEqual('correct-horse', 'correct-horse')).toBe(true);
    expect(tokensEqual('correct-hors', 'correct-horse')).toBe(false);
    expect(tokensEqual('', 'correct-horse')).toBe(false);
  });
});

describe('confineMediaPath', () => {
  let base: string;
  let root: string;
  beforeAll(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'camstream-media-')));
    root = join(base, 'media');
    await mkdir(join(root, 'sub'), { recursive: true });
    await writeFile(join(root, 'a.mp4'), 'x');
    await writeFile(join(root, 'sub', 'b.mkv'), 'x');
    await mkdir(join(root, '....'));
    await writeFile(join(root, '....', 'x'), 'x');
    await writeFile(join(root, '..dots.mp4'), 'x');
    await writeFile(join(base, 'secret.mp4'), 'x');
    await symlink(join(base, 'secret.mp4'), join(root, 'out.mp4'));
    await symlink(join(root, 'a.mp4'), join(root, 'in.mp4'));
    await symlink(base, join(root, 'up'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('resolves files inside the root, through symlinks that stay inside', async () => {
    expect(await confineMediaPath(root, 'a.mp4')).toBe(join(root, 'a.mp4'));
    expect(await confineMediaPath(root, 'sub/b.mkv')).toBe(join(root, 'sub', 'b.mkv'));
    expect(await confineMediaPath(root, 'in.mp4')).toBe(join(root, 'a.mp4'));
  });

  it('takes names that merely start with dots, while .. segments stay refused', async () => {
    expect(await confineMediaPath(root, '....//x')).toBe(join(root, '....', 'x'));
    expect(await confineMediaPath(root, '..dots.mp4')).toBe(join(root, '..dots.mp4'));
    await expect(confineMediaPath(root, '..//secret.mp4')).rejects.toThrow(/must not contain '\.\.'/);
    await expect(confineMediaPath(root, '..../../../secret.mp4')).rejects.toThrow(/must not contain '\.\.'/);
  });

  it.each([
    ['../secret.mp4', 'forbidden-path', /must not contain '\.\.'/],
    ['sub/../../secret.mp4', 'forbidden-path', /\.\./],
    ['/etc/passwd', 'forbidden-path', /relative/],
    ['out.mp4', 'forbidden-path', /symlink/],
    ['up/secret.mp4', 'forbidden-path', /symlink/],
    ['a.mp4\0.txt', 'forbidden-path', /NUL/],
    ['missing.mp4', 'not-found', /does not exist/],
    ['sub', 'not-found', /not a regular file/],
  ])('refuses %s (%s)', async (path, code, message) => {
    const err = await confineMediaPath(root, path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MediaPathError);
    expect((err as MediaPathError).code).toBe(code);
    expect((err as Error).message).toMatch(message);
  });

  it('lists the videos under the root, not following symlinks', async () => {
    // Names starting with a dot are hidden from the list (they can still be opened by name).
    expect(await listMedia(root)).toEqual(['a.mp4', 'sub/b.mkv']);
  });
});
