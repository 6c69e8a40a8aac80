/**
 * The address check in front of URL sources: a viewer may name any URL, and without this check the server
 * would fetch `http://127.0.0.1:...`, a router's admin page or a cloud metadata endpoint on its behalf. The
 * host name is resolved the way ffmpeg will resolve it (the system resolver) and every address it resolves
 * to must be public: loopback, private, link-local, carrier-grade NAT, multicast, unspecified and reserved
 * ranges are refused, in IPv4 and IPv6, IPv4 embedded in IPv6 (mapped, NAT64, 6to4) included.
 *
 * What it cannot see: ffmpeg resolves the name again when it connects (a name whose answer changes between
 * the two lookups) and follows HTTP redirects. The check narrows what a viewer can reach; it does not make
 * URL sources safe for viewers the operator does not trust (they are off by default).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** IPv4 ranges no viewer may make the server fetch from: [first address, prefix length, what it is]. */
const PRIVATE_V4: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** IPv6 ranges, by their leading bits: [first address, prefix length, what it is]. */
const PRIVATE_V6: ReadonlyArray<readonly [string, number, string]> = [
  ['::', 96, 'unspecified, loopback or IPv4-compatible'],
  ['100::', 64, 'discard'],
  ['fc00::', 7, 'unique local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** The 16 bytes of an IPv6 address (`isIP(ip) === 6`), a trailing dotted quad included. */
function v6Bytes(ip: string): number[] {
  let text = ip.replace(/%.*$/, '');
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = v4Bytes(quad[1]);
    text = text.slice(0, -quad[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

function matches(bytes: number[], net: number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((bytes[i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
}

function v4Range(bytes: number[]): string | undefined {
  return PRIVATE_V4.find(([net, prefix]) => matches(bytes, v4Bytes(net), prefix))?.[2];
}

/** The IPv4 address an IPv6 address carries (mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). */
function embeddedV4(b: number[]): number[] | undefined {
  const zeros = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return b.slice(12);
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return undefined;
}

/**
 * What kind of non-public address `ip` is ('loopback', 'private', 'link-local', ...), or undefined for a
 * public one. `ip` is an IPv4 or IPv6 literal without brackets; anything else counts as 'not an address'.
 */
export function privateAddressKind(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return v4Range(v4Bytes(ip));
  if (family !== 6) return 'not an address';
  const bytes = v6Bytes(ip);
  const v4 = embeddedV4(bytes);
  if (v4) return v4Range(v4);
  return PRIVATE_V6.find(([net, prefix]) => matches(bytes, v6Bytes(net), prefix))?.[2];
}

/** Resolves a host name to every address it has (the system resolver, as ffmpeg uses). */
export type HostLookup = (host: string) => Promise<string[]>;

const systemLookup: HostLookup = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Why `url` may not be opened as a source, or undefined when it may: its host is missing or does not
 * resolve, or (unless `allowPrivate`) one of its addresses is not public. Every address is checked, so a
 * name with one public and one loopback address is refused.
 */
export async function urlHostRefusal(url: URL, allowPrivate: boolean, resolveHost: HostLookup = systemLookup): Promise<string | undefined> {
  const host = url.hostname.startsWith('[') && url.hostname.endsWith(']') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') return `URL '${url.href}' names no host`;
  if (allowPrivate) return undefined;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await resolveHost(host);
  } catch (err) {
    return `host '${host}' does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (addresses.length === 0) return `host '${host}' does not resolve`;
  for (const address of addresses) {
    const kind = privateAddressKind(address);
    if (kind) {
      const via = address === host ? '' : ` (${host} resolves to ${address})`;
      return `URL host ${address}${via} is a ${kind} address; this server opens only public addresses (start it with --allow-private-urls to allow them)`;
    }
  }
  return undefined;
}
