/**
 * The annotation layer of the image overlay: box outlines, their label tags and the top-k panel, written
 * as SVG and rasterized by sharp's librsvg. Private to render/.
 */
import sharp from 'sharp';
import { ConfigError, InputError } from '../../../models/index.ts';
import { labelText, panelLine } from '../labels.ts';
import type { OverlayBox, OverlayConfig, OverlayInput } from '../overlay-config.ts';

const PALETTE = ['#ffffff', '#00e5ff', '#ff3df2', '#ffe600', '#4dff4d'];

function colourOf(box: OverlayBox, index: number): string {
  const c = box.colour;
  if (c === undefined) return PALETTE[index % PALETTE.length];
  if (Array.isArray(c)) {
    if (c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) return `rgb(${c.join(',')})`;
  } else if (typeof c === 'string' && /^(#[0-9a-f]{3,4}|#[0-9a-f]{6}|#[0-9a-f]{8}|[a-z]{3,30})$/i.test(c)) {
    return c;
  }
  throw new ConfigError(`boxes[${index}].colour must be #rgb, #rrggbb, a colour name or [r, g, b] bytes, got ${JSON.stringify(c)}`);
}

/** Text for SVG: markup characters escaped, characters XML cannot hold at all (controls) replaced by '?'. */
function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '?')
    .replace(/[<>&'"]/g, (ch) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[ch]};`);
}


interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

const overlapArea = (a: Rect, b: Rect) =>
  Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) *
  Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));

/** Two decimals are plenty for SVG coordinates and keep the document small. */
const n2 = (v: number) => Math.round(v * 100) / 100;

/**
 * Builds the SVG; `withText` false leaves only the box outlines (the fallback when text rendering fails).
 * Outlines go first and label tags on top; each tag takes the first free spot among above the box, inside
 * its top edge, below it and inside its bottom edge (left-aligned, then right-aligned), else the least
 * covered one, so tags of nested or neighbouring boxes and the top-k panel stay readable.
 */
function annotationSvg(
  input: OverlayInput,
  width: number,
  height: number,
  config: Required<OverlayConfig>,
  withText: boolean,
): string | null {
  const boxes = input.boxes ?? [];
  const text = withText && config.labels;
  // The top-k panel takes at most about a third of the frame's height: small frames list fewer classes.
  const allTop = text ? (input.topLabels ?? []) : [];
  if (boxes.length === 0 && allTop.length === 0) return null;
  const short = Math.min(width, height);
  const lw = config.lineWidth || Math.max(2, Math.round(short / 150));
  // Automatic size: 1/28 of the shorter side, at least 8 px so small frames stay legible.
  const fs = config.fontSize || Math.max(8, Math.round(short / 28));
  const top = allTop.slice(0, Math.max(1, Math.floor((height / 3 - fs) / Math.round(fs * 1.3))));
  // DejaVu Sans averages ~0.6 em per character; the label backgrounds are sized from that estimate.
  const textWidth = (s: string) => Math.ceil(s.length * fs * 0.6) + fs;
  const font = `font-family="${escapeXml(config.fontFamily)}" font-size="${fs}"`;
  const outlines: string[] = [];
  const tags: string[] = [];
  const taken: Rect[] = [];
  const panel: string[] = [];
  if (top.length > 0) {
    const lines = top.map((l, i) => panelLine(i + 1, l.label, l.score, l.shown === true));
    const lh = Math.round(fs * 1.3);
    const pad = Math.round(fs * 0.4);
    const rect = { x: 0, y: 0, w: Math.max(...lines.map(textWidth)), h: lines.length * lh + 2 * pad };
    taken.push(rect);
    panel.push(`<rect x="0" y="0" width="${rect.w}" height="${rect.h}" fill="black" fill-opacity="0.6"/>`);
    lines.forEach((line, i) => {
      panel.push(`<text x="${n2(fs / 2)}" y="${pad + i * lh + fs}" ${font} fill="white">${escapeXml(line)}</text>`);
    });
  }
  boxes.forEach((b, i) => {
    if (!Array.isArray(b.box) || b.box.length !== 4 || !b.box.every((v) => Number.isFinite(v))) {
      throw new InputError(`boxes[${i}].box must be [x1, y1, x2, y2] of finite numbers, got ${JSON.stringify(b.box)}`);
    }
    const colour = colourOf(b, i);
    const [x1, y1, x2, y2] = b.box;
    const x = n2(Math.min(x1, x2));
    const y = n2(Math.min(y1, y2));
    const w = n2(Math.abs(x2 - x1));
    const h = n2(Math.abs(y2 - y1));
    // A dark halo under the coloured stroke keeps the outline visible on any background.
    outlines.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="black" stroke-opacity="0.6" stroke-width="${lw + 2}"/>`,
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${lw}"/>`,
    );
    const label = text ? labelText(b.label, b.score) : '';
    if (!label) return;
    const tw = textWidth(label);
    const th = Math.round(fs * 1.35);
    const half = lw / 2;
    // Left-aligned spots first, then the same spots right-aligned with the box.
    const rows = [y - half - th, y + half, y + h + half, y + h - half - th];
    const candidates: Rect[] = [x - half, x + w + half - tw]
      .flatMap((cx) => rows.map((cy) => ({ x: Math.max(0, Math.min(cx, width - tw)), y: cy, w: tw, h: th })))
      .filter((r) => r.y >= 0 && r.y + r.h <= height);
    const covered = (r: Rect) => taken.reduce((sum, t) => sum + overlapArea(r, t), 0);
    // A free spot if there is one, else the least covered (the top-k panel and earlier tags stay readable).
    const spot =
      candidates.find((r) => covered(r) === 0) ??
      [...candidates].sort((a, b) => covered(a) - covered(b))[0] ?? {
        x: Math.max(0, Math.min(x, width - tw)),
        y: Math.max(0, Math.min(y, height - th)),
        w: tw,
        h: th,
      };
    taken.push(spot);
    tags.push(
      `<rect x="${n2(spot.x)}" y="${n2(spot.y)}" width="${tw}" height="${th}" fill="${colour}" fill-opacity="0.85"/>`,
      `<text x="${n2(spot.x + fs / 2)}" y="${n2(spot.y + fs * 1.05)}" ${font} fill="black">${escapeXml(label)}</text>`,
    );
  });
  const body = [...outlines, ...tags, ...panel].join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${body}</svg>`;
}

/**
 * The annotation layer as raw RGBA at full size, or null when there is nothing to draw. Rasterized here
 * (not lazily inside the final pipeline) so that a text failure can fall back to outlines only.
 */
export async function renderAnnotations(
  input: OverlayInput,
  width: number,
  height: number,
  config: Required<OverlayConfig>,
): Promise<Buffer | null> {
  const rasterize = async (svg: string) => {
    const { data, info } = await sharp(Buffer.from(svg), { density: 72 })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== 4) {
      throw new Error(`annotation layer came out ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x4`);
    }
    return data;
  };
  const full = annotationSvg(input, width, height, config, true);
  if (!full) return null;
  try {
    return await rasterize(full);
  } catch (err) {
    input.onWarning?.(`overlay text could not be rendered (${(err as Error).message}); drawing boxes only`);
    const plain = annotationSvg(input, width, height, config, false);
    if (!plain) return null;
    try {
      return await rasterize(plain);
    } catch (err2) {
      input.onWarning?.(`overlay boxes could not be rendered (${(err2 as Error).message}); heat map only`);
      return null;
    }
  }
}
