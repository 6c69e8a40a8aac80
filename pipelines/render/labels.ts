/**
 * The overlay's words, shared by the image overlay (SVG) and the video overlay (text sprites) so both
 * read the same: a box tag `label 0.87`, and a top-k panel listing the classes by score, `1. label 0.87`,
 * with the class whose map and box are drawn marked by a trailing `◀`.
 */

/** Marks the panel line of the class whose map and box are drawn. */
export const SHOWN_MARK = '◀';

/** `label 0.87`: the label, then the score with two decimals when there is one. */
export function labelText(label: string | undefined, score: number | undefined): string {
  const parts: string[] = [];
  if (label) parts.push(label);
  if (typeof score === 'number' && Number.isFinite(score)) parts.push(score.toFixed(2));
  return parts.join(' ');
}

/** One line of the top-k panel: `2. label 0.41`, plus the mark on the shown class's line. */
export function panelLine(rank: number, label: string, score: number, shown: boolean): string {
  return `${rank}. ${labelText(label, score)}${shown ? ` ${SHOWN_MARK}` : ''}`;
}
