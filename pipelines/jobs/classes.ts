/**
 * Classes asked for by index or by name (`--classes "fox squirrel,orange,3"`), checked against a model's
 * class count and labels. Names match a label exactly, ignoring case and surrounding spaces.
 */
import { ConfigError } from '../../common/index.ts';

/** A class as a user names it: its index, or its label. */
export type ClassRef = number | string;

/** Splits `"fox squirrel, orange,3"` into refs: whole numbers become indices, anything else a name. */
export function parseClassRefs(value: string): ClassRef[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((s) => s === '')) {
    throw new ConfigError(`--classes must be comma-separated class indices or names, got '${value}'`);
  }
  return parts.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * The class indices `refs` name, in order and without repeats.
 * @throws ConfigError naming an index out of range, or a name no label has (with the closest labels).
 */
export function resolveClassRefs(refs: readonly ClassRef[], labels: readonly string[], numClasses: number): number[] {
  const byName = new Map<string, number>();
  labels.forEach((label, i) => {
    const key = label.trim().toLowerCase();
    if (i < numClasses && !byName.has(key)) byName.set(key, i);
  });
  const out: number[] = [];
  for (const ref of refs) {
    let id: number | undefined;
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 0 || ref >= numClasses) {
        throw new ConfigError(`class ${String(ref)} is out of range: this model has classes 0-${numClasses - 1}`);
      }
      id = ref;
    } else {
      id = byName.get(ref.trim().toLowerCase());
      if (id === undefined) {
        const near = closeMatches(ref, labels.slice(0, numClasses));
        throw new ConfigError(
          `unknown class '${ref}'${near.length > 0 ? `; close matches: ${near.map((n) => `'${n}'`).join(', ')}` : ' (no label is close)'}`,
        );
      }
    }
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/** Up to five labels within a small edit distance of `name`, or containing it, closest first. */
export function closeMatches(name: string, labels: readonly string[]): string[] {
  const key = name.trim().toLowerCase();
  const limit = Math.max(2, Math.floor(key.length / 3));
  return labels
    .map((label) => {
      const l = label.toLowerCase();
      return { label, d: l.includes(key) || key.includes(l) ? 0.5 : editDistance(key, l) };
    })
    .filter((m) => m.d <= limit)
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map((m) => m.label);
}

/** Levenshtein distance, two rows. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
