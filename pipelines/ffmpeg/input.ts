/**
 * What ffmpeg may read: local files, and URLs whose scheme is on a whitelist. ffmpeg itself would open
 * any of its ~50 protocols (and nested ones: an HLS playlist can point at `file:` or `concat:`), so each
 * run also passes `-protocol_whitelist` with exactly the protocols the scheme needs.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../models/index.ts';

/**
 * Schemes an input may use. Default: `INPUT_SCHEMES`. `stdin` (the input `-`, this process's standard
 * input handed to ffmpeg) is never a default: only the command line, whose user owns that stdin, allows it.
 */
export type InputScheme = 'file' | 'http' | 'https' | 'rtsp' | 'stdin';
export const INPUT_SCHEMES: readonly InputScheme[] = Object.freeze(['file', 'http', 'https', 'rtsp']);

/** The input that names standard input. */
export const STDIN_INPUT = '-';

/** ffmpeg protocols each scheme needs underneath (HTTP runs over tcp, HTTPS over tls, RTSP over rtp/udp/tcp). */
const PROTOCOLS: Record<InputScheme, readonly string[]> = {
  file: ['file'],
  http: ['http', 'tcp'],
  https: ['https', 'tls', 'tcp'],
  rtsp: ['rtsp', 'rtp', 'srtp', 'udp', 'tcp', 'tls'],
  stdin: ['pipe'],
};

export interface ResolvedInput {
  /** What ffmpeg gets after `-i`: an absolute path for files, the URL otherwise. */
  url: string;
  /** The input as the user gave it, for messages. */
  display: string;
  scheme: InputScheme;
  /** The value for `-protocol_whitelist`. */
  protocolWhitelist: string;
  /** More input options placed before `-i` (a confined file's `-format_whitelist`, see confine.ts). */
  inputArgs?: readonly string[];
}

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Classifies an input as a file path or a whitelisted URL. Throws ConfigError naming the scheme for
 * anything else (`concat:`, `ftp://`, `data:`, `pipe:`...). `-` is standard input, where `allowed` has
 * `stdin`. A relative path is made absolute, so a file called `a:b.mp4` must be written `./a:b.mp4` (and
 * one called `-`, `./-`).
 */
export function resolveInput(input: string, allowed: readonly InputScheme[] = INPUT_SCHEMES): ResolvedInput {
  if (typeof input !== 'string' || input.length === 0) {
    throw new ConfigError(`input must be a file path or a URL, got ${JSON.stringify(input)}`);
  }
  if (input === STDIN_INPUT) {
    if (!allowed.includes('stdin')) throw new ConfigError(`input '-' (standard input) is not allowed here (allowed: ${allowed.join(', ')})`);
    return { url: 'pipe:0', display: 'stdin', scheme: 'stdin', protocolWhitelist: PROTOCOLS.stdin.join(',') };
  }
  const m = SCHEME_RE.exec(input);
  // One letter before ':' is a Windows drive (C:\video.mp4), not a scheme.
  const scheme = m && m[1].length > 1 ? m[1].toLowerCase() : undefined;
  if (scheme === undefined) {
    if (!allowed.includes('file')) throw new ConfigError(`input '${input}' is a file path, but file inputs are not allowed here (allowed: ${allowed.join(', ')})`);
    return { url: resolve(input), display: input, scheme: 'file', protocolWhitelist: PROTOCOLS.file.join(',') };
  }
  if (!(INPUT_SCHEMES as readonly string[]).includes(scheme) || !allowed.includes(scheme as InputScheme)) {
    throw new ConfigError(`input '${input}' uses the scheme '${scheme}:', which is not allowed (allowed: ${allowed.join(', ')})`);
  }
  const known = scheme as InputScheme;
  if (known === 'file') {
    let path: string;
    try {
      path = fileURLToPath(input);
    } catch (err) {
      throw new ConfigError(`input '${input}' is not a valid file: URL: ${(err as Error).message}`);
    }
    return { url: path, display: input, scheme: 'file', protocolWhitelist: PROTOCOLS.file.join(',') };
  }
  try {
    new URL(input);
  } catch {
    throw new ConfigError(`input '${input}' is not a valid ${known} URL`);
  }
  return { url: input, display: input, scheme: known, protocolWhitelist: PROTOCOLS[known].join(',') };
}

/**
 * True when `input` can be read only once: a URL (many cameras serve one client), standard input, or a
 * path that is a named pipe or a device. A regular file, or a path that does not exist (whose error the
 * first reader reports), can be opened again: probed first, and decoded a second time by the compositor.
 * Throws like `resolveInput` for an input that is not allowed.
 */
export function readsOnce(input: string, allowed: readonly InputScheme[] = INPUT_SCHEMES): boolean {
  const r = resolveInput(input, allowed);
  if (r.scheme !== 'file') return true;
  try {
    return !statSync(r.url).isFile();
  } catch {
    return false;
  }
}
