/**
 * What viewers may learn of where a model came from: its file or folder name, never the server's path; of a
 * URL its scheme, host and last path segment, never its user, password or query (signed URLs carry tokens
 * there). One reading of the source serves both the summary's `source` and the model's default name.
 */

/** The parts of a model's source that may be shown. */
interface VisibleParts {
  /** `scheme://host[:port]` of a URL source. */
  origin?: string;
  /** The folder of a `model.json`. */
  folder?: string;
  /** The last name of the path ('' for a URL without a path). */
  name: string;
}

function visibleParts(source: string): VisibleParts {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    try {
      const url = new URL(source);
      return { origin: `${url.protocol}//${url.host}`, name: url.pathname.split('/').filter(Boolean).pop() ?? '' };
    } catch {
      return { origin: 'a URL', name: '' };
    }
  }
  const parts = source.split(/[\\/]/).filter(Boolean);
  const name = parts.pop() ?? source;
  return /^model\.json$/i.test(name) && parts.length > 0 ? { folder: parts.pop(), name } : { name };
}

/** The model's source as viewers see it: `digits-gap`, `darknet model.json`, `https://host/…/resnet18.onnx`. */
export function publicSource(source: string): string {
  const { origin, folder, name } = visibleParts(source);
  if (origin !== undefined) return name ? `${origin}/…/${name}` : origin;
  return folder !== undefined ? `${folder} ${name}` : name;
}

/** The name a model is listed under when none was given: its folder (of a model.json), file name, or URL's last segment or host. */
export function defaultModelName(source: string): string {
  const { origin, folder, name } = visibleParts(source);
  if (folder !== undefined) return folder;
  if (name) return name;
  return origin?.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '') ?? source;
}
