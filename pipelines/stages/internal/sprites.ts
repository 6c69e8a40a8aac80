/**
 * Text rendered once and reused: each distinct string becomes a small RGBA sprite through sharp's text
 * input (Pango + FreeType), kept in a bounded least-recently-used cache. Labels repeat from frame to frame
 * and scores are shown with two digits, so after the first frames almost every string is a cache hit
 * (about a millisecond each on a miss).
 */
import sharp from 'sharp';
import type { Sprite } from './draw.ts';

function escapeMarkup(s: string): string {
  return s.replace(/[<>&'"]/g, (ch) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[ch]};`);
}

export class TextSprites {
  private cache = new Map<string, Sprite | null>();
  private failed = false;

  /**
   * @param fontFamily Pango family list (`DejaVu Sans, sans-serif`).
   * @param fontSizePx Font size in pixels (rendered at 72 dpi, where a point is a pixel).
   * @param maxEntries Cache bound. Default 512.
   * @param onWarning Told once when text cannot be rendered at all (then every string yields null).
   */
  constructor(
    private readonly fontFamily: string,
    private readonly fontSizePx: number,
    private readonly maxEntries = 512,
    private readonly onWarning?: (message: string) => void,
  ) {}

  /** The sprite of `text` in `colour` (CSS hex), or null when text rendering is unavailable. */
  async get(text: string, colour = '#ffffff'): Promise<Sprite | null> {
    const key = `${colour}\u0000${text}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      // Re-insert: Map iteration order is insertion order, so the oldest entry is the first.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    if (this.failed || text === '') return null;
    let sprite: Sprite | null = null;
    try {
      const { data, info } = await sharp({
        text: {
          text: `<span foreground="${colour}">${escapeMarkup(text)}</span>`,
          font: `${this.fontFamily} ${this.fontSizePx}`,
          dpi: 72,
          rgba: true,
        },
      })
        .ensureAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      sprite = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
    } catch (err) {
      this.failed = true;
      this.onWarning?.(`overlay text cannot be rendered (${(err as Error).message}); drawing without labels`);
      return null;
    }
    this.cache.set(key, sprite);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return sprite;
  }
}
