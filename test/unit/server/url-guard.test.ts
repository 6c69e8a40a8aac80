import { describe, expect, it } from 'vitest';
import { privateAddressKind, urlHostRefusal, type HostLookup } from '../../../server/index.ts';

describe('privateAddressKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.20.30.40', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'unspecified, loopback or IPv4-compatible'],
    ['::', 'unspecified, loopback or IPv4-compatible'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a00:1', 'private'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'unique local (private)'],
    ['ff02::1', 'multicast'],
    ['example.org', 'not an address'],
  ])('%s is %s', (ip, kind) => {
    expect(privateAddressKind(ip)).toBe(kind);
  });

  it.each(['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])(
    '%s is public',
    (ip) => {
      expect(privateAddressKind(ip)).toBeUndefined();
    },
  );
});

describe('urlHostRefusal', () => {
  const table: Record<string, string[]> = { 'public.test': ['93.184.216.34', '2606:2800::1'], 'mixed.test': ['93.184.216.34', '::ffff:10.0.0.7'] };
  const lookup: HostLookup = async (host) => {
    if (!(host in table)) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return table[host];
  };

  it('passes a host whose every address is public', async () => {
    expect(await urlHostRefusal(new URL('https://public.test/v.mp4'), false, lookup)).toBeUndefined();
  });

  it('refuses a host with one private address among public ones, naming it', async () => {
    expect(await urlHostRefusal(new URL('http://mixed.test/v.mp4'), false, lookup)).toMatch(/::ffff:10\.0\.0\.7 \(mixed\.test resolves to/);
  });

  it('refuses literals and hosts that do not resolve; allows anything when private URLs are allowed', async () => {
    expect(await urlHostRefusal(new URL('http://[::1]:8080/'), false, lookup)).toMatch(/::1 is a .*loopback/);
    expect(await urlHostRefusal(new URL('rtsp://nowhere.test/s'), false, lookup)).toMatch(/nowhere\.test' does not resolve \(ENOTFOUND\)/);
    expect(await urlHostRefusal(new URL('http://127.0.0.1/'), true, lookup)).toBeUndefined();
  });
});
