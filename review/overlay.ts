/**
 * Overlay thumbnails for the review UI and the HTML report: a stored (quantized) map coloured over the image
 * by the shared renderer (pipelines/render), with the annotated boxes (green) and the map's paper-rule box
 * (red), shrunk to a thumbnail. The image path always comes from the store.
 */
import sharp from 'sharp';
import { InputError } from '../common/index.ts';
import { paperBox, type Box } from '../models/index.ts';
import { renderOverlayBuffer, type OverlayBox } from '../pipelines/render/index.ts';
import { frameGeometry } from '../pipelines/stages/localize.ts';
import { dequantizeRawMap } from './import.ts';
import type { ReviewStore } from './store.ts';

export interface ReviewOverlayOptions {
  /** Which class's map; default the class the localization used (the true class). */
  classId?: number;
  /** Longest side of the output in pixels, 16..2048. Default 320. */
  maxSide?: number;
  /** Draw the annotated boxes and the CAM box. Default true. */
  boxes?: boolean;
  /** Heat layer opacity. Default 0.5. */
  alpha?: number;
}

export const TRUE_BOX_COLOUR = '#22c55e';
export const CAM_BOX_COLOUR = '#ef4444';

/** Renders image `imageId`'s overlay as JPEG bytes. Throws InputError for an unknown image or class map. */
export async function renderReviewOverlay(store: ReviewStore, imageId: number, options: ReviewOverlayOptions = {}): Promise<Buffer> {
  const row = store.row(imageId);
  if (!row) throw new InputError(`no analysed image with id ${imageId}`);
  const dataset = store.requireDataset(row.datasetId);
  if (!dataset.summary) throw new InputError(`dataset ${dataset.name} has not been analysed`);
  const classId = options.classId ?? row.mapClass;
  const stored = store.maps(imageId).find((m) => m.classId === classId);
  if (!stored) throw new InputError(`image ${imageId} has no stored map for class ${classId} (stored: ${store.maps(imageId).map((m) => m.classId).join(', ')})`);
  const maxSide = options.maxSide ?? 320;
  if (!Number.isInteger(maxSide) || maxSide < 16 || maxSide > 2048) throw new InputError(`maxSide must be an integer in [16, 2048], got ${maxSide}`);
  const size = [stored.height, stored.width] as const;
  // Quantized over its own range, so q / 255 is the min-max normalized map.
  const normalized = Float32Array.from(stored.data, (q) => q / 255);
  const geometry = frameGeometry(row.width, row.height, dataset.summary.model.preprocess);
  const boxes: OverlayBox[] = [];
  if (options.boxes !== false) {
    for (const b of row.boxes) boxes.push({ box: b, colour: TRUE_BOX_COLOUR });
    const camBox: Box | null = classId === row.mapClass ? row.paperBox : paperBox(dequantizeRawMap(stored), size, geometry);
    if (camBox) boxes.push({ box: camBox, colour: CAM_BOX_COLOUR });
  }
  const full = await renderOverlayBuffer(
    { image: row.path, map: normalized, mapSize: size, geometry, boxes, labels: false, alpha: options.alpha ?? 0.5 },
    'png',
  );
  return sharp(full).resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 85 }).toBuffer();
}
