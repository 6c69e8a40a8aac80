/**
 * `<cam-viewer>`: the picture (the webcam's own <video>, or the JPEG frames a server-side source sends)
 * with the class activation map drawn over it on the GPU, and the boxes on top. Results are presented with
 * `present()`; drawing happens on the next animation frame, so bursts cost one draw. After each draw the
 * element fires `cam-drawn` (detail: the result and `drawnAt`, performance.now()) for the stats.
 */
import { css, html, LitElement, type PropertyValues } from 'lit';
import type { ResultMessage } from '../../../protocol/index.ts';
import { AnimationFrameController } from '../../controllers/animation-frame-controller.ts';
import { createOverlayRenderer, type OverlayRenderer } from './overlay-renderer.ts';

export interface CamDrawnDetail {
  result: ResultMessage;
  drawnAt: number;
}

/** Which map to show: the class smoothing holds (the result's `shown`), a rank by score, or the per-cell max of all k. */
export type MapChoice = 'shown' | number | 'max';

export class CamViewer extends LitElement {
  static override properties = {
    mode: { type: String },
    opacity: { type: Number },
    colormap: { type: String },
    luts: { attribute: false },
    showBoxes: { type: Boolean, attribute: 'show-boxes' },
    choice: { attribute: false },
    prefer: { type: String },
    hiddenClass: { attribute: false },
    aspect: { state: true },
  };

  static override styles = css`
    :host { display: block; }
    .stage { position: relative; width: 100%; background: #111; border-radius: 6px; overflow: hidden; }
    video, canvas { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
    /* The stage takes the picture's aspect; contain keeps the camera's shape even while it settles. */
    video { object-fit: contain; }
    .hidden { visibility: hidden; }
    .empty { position: absolute; inset: 0; display: grid; place-items: center; color: #aaa; font: 14px system-ui, sans-serif; }
  `;

  /** `webcam`: the <video> shows the camera; `server`: frames come with the results. */
  declare mode: 'webcam' | 'server' | 'none';
  declare opacity: number;
  declare colormap: string;
  /** Colormap lookup tables by name (from the server's hello). */
  declare luts: Record<string, Uint8Array>;
  declare showBoxes: boolean;
  declare choice: MapChoice;
  /** Renderer preference; the fallback is used when WebGL is unavailable. */
  declare prefer: 'webgl' | '2d';
  /** A class id whose map and box are never drawn (a model's `no digit` class), or null. */
  declare hiddenClass: number | null;
  declare aspect: number;

  private renderer: OverlayRenderer | undefined;
  private pending: ResultMessage | undefined;
  private last: ResultMessage | undefined;
  private frameBitmap: ImageBitmap | undefined;
  private dirty = false;
  /** Bumped by reset(): a decode started before it is dropped. */
  private generation = 0;
  /** A frame's JPEG is being decoded. */
  private decodingNow = false;
  /** The newest result that arrived while a decode was running: decoded next (older ones are skipped). */
  private nextFrame: ResultMessage | undefined;

  constructor() {
    super();
    this.mode = 'none';
    this.opacity = 0.5;
    this.colormap = 'turbo';
    this.luts = {};
    this.showBoxes = true;
    this.choice = 'shown';
    this.prefer = 'webgl';
    this.hiddenClass = null;
    this.aspect = 4 / 3;
    new AnimationFrameController(this, () => this.drawIfDirty());
  }

  /** Which renderer runs: `webgl` or `2d` (undefined before the first render). */
  get rendererKind(): 'webgl' | '2d' | undefined {
    return this.renderer?.kind;
  }

  /** The <video> the camera plays into. */
  get video(): HTMLVideoElement {
    return this.renderRoot.querySelector('video')!;
  }

  /** Results drawn so far. */
  drawnFrames = 0;

  /** Shows a result on the next animation frame (a server frame's JPEG is decoded first). */
  present(result: ResultMessage): void {
    if (result.jpeg) {
      // Decode off the main thread, one at a time: results arriving meanwhile wait, and only the newest of
      // them is decoded next. (Letting each newer result cancel the decode in flight drew nothing at all
      // once results came faster than one decode takes, e.g. with several pages open.)
      if (this.decodingNow) this.nextFrame = result;
      else this.decodeFrame(result);
    } else {
      this.pending = result;
      this.dirty = true;
    }
    // A webcam frame on the wire is model-sized (maybe stretched): the stage follows the <video> instead.
    if (this.mode !== 'webcam') this.setAspect(result.frameSize[0], result.frameSize[1]);
  }

  private decodeFrame(result: ResultMessage): void {
    const generation = this.generation;
    this.decodingNow = true;
    void createImageBitmap(new Blob([result.jpeg as Uint8Array<ArrayBuffer>], { type: 'image/jpeg' }))
      .then(
        (bitmap) => {
          if (generation !== this.generation) {
            bitmap.close();
            return;
          }
          this.frameBitmap?.close();
          this.frameBitmap = bitmap;
          this.pending = result;
          this.dirty = true;
        },
        () => {},
      )
      .finally(() => {
        this.decodingNow = false;
        const next = this.nextFrame;
        this.nextFrame = undefined;
        if (next) this.decodeFrame(next);
      });
  }

  private setAspect(w: number, h: number): void {
    if (w > 0 && h > 0 && Math.abs(w / h - this.aspect) > 1e-3) this.aspect = w / h;
  }

  /** The camera's own size, once known and whenever it changes (a track's `resize`). */
  private onVideoSize(): void {
    const video = this.video;
    if (this.mode === 'webcam') this.setAspect(video.videoWidth, video.videoHeight);
  }

  /** Forgets the picture and the maps (a new source). */
  reset(): void {
    this.generation++;
    this.nextFrame = undefined;
    this.pending = undefined;
    this.last = undefined;
    this.frameBitmap?.close();
    this.frameBitmap = undefined;
    this.renderer?.clear();
    const boxes = this.boxCanvas;
    boxes?.getContext('2d')?.clearRect(0, 0, boxes.width, boxes.height);
    const frame = this.frameCanvas;
    frame?.getContext('2d')?.clearRect(0, 0, frame.width, frame.height);
  }

  /** The picture, the map and the boxes as one PNG, at the source's resolution (the camera's, or the frame's). */
  async snapshot(): Promise<Blob> {
    const stage = this.renderRoot.querySelector('.stage') as HTMLElement;
    const [w, h] = this.sourceSize() ?? [stage.clientWidth * devicePixelRatio, stage.clientHeight * devicePixelRatio];
    const out = document.createElement('canvas');
    out.width = Math.max(1, Math.round(w));
    out.height = Math.max(1, Math.round(h));
    const ctx = out.getContext('2d')!;
    ctx.imageSmoothingEnabled = true;
    if (this.mode === 'webcam') ctx.drawImage(this.video, 0, 0, out.width, out.height);
    else if (this.frameBitmap) ctx.drawImage(this.frameBitmap, 0, 0, out.width, out.height);
    else ctx.drawImage(this.frameCanvas!, 0, 0, out.width, out.height);
    ctx.drawImage(this.activeOverlay!, 0, 0, out.width, out.height);
    ctx.drawImage(this.boxCanvas!, 0, 0, out.width, out.height);
    return new Promise<Blob>((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('snapshot failed'))), 'image/png'));
  }

  /** The picture's own size: the camera's video, or the last server frame; undefined before either. */
  private sourceSize(): [number, number] | undefined {
    if (this.mode === 'webcam' && this.video.videoWidth > 0) return [this.video.videoWidth, this.video.videoHeight];
    if (this.mode === 'server' && this.frameBitmap) return [this.frameBitmap.width, this.frameBitmap.height];
    return undefined;
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.renderer?.dispose();
    this.renderer = undefined;
    this.frameBitmap?.close();
    this.frameBitmap = undefined;
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (changed.has('mode')) this.onVideoSize();
    if (!this.renderer || changed.has('prefer')) {
      this.renderer?.dispose();
      this.renderer = createOverlayRenderer(this.glCanvas!, this.fallbackCanvas!, this.prefer);
      this.requestUpdate();
    }
    // Display settings redraw the last result at once: they cost the server nothing.
    if (changed.has('opacity') || changed.has('colormap') || changed.has('choice') || changed.has('showBoxes') || changed.has('aspect') || changed.has('hiddenClass')) {
      if (this.last && !this.pending) this.pending = this.last;
      this.dirty = true;
    }
  }

  private get glCanvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector('canvas.gl');
  }
  private get fallbackCanvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector('canvas.c2d');
  }
  private get activeOverlay(): HTMLCanvasElement | null {
    return this.renderer?.kind === 'webgl' ? this.glCanvas : this.fallbackCanvas;
  }
  private get boxCanvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector('canvas.boxes');
  }
  private get frameCanvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector('canvas.frame');
  }

  private fit(canvas: HTMLCanvasElement): void {
    const w = Math.max(1, Math.round(canvas.clientWidth * devicePixelRatio));
    const h = Math.max(1, Math.round(canvas.clientHeight * devicePixelRatio));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
  }

  private drawIfDirty(): void {
    if (!this.dirty || !this.renderer) return;
    this.dirty = false;
    const r = this.pending;
    if (!r) return;
    this.pending = undefined;
    const overlay = this.activeOverlay!;
    const boxes = this.boxCanvas!;
    this.fit(overlay);
    this.fit(boxes);
    if (this.mode === 'server' && this.frameBitmap) {
      const frame = this.frameCanvas!;
      this.fit(frame);
      frame.getContext('2d')!.drawImage(this.frameBitmap, 0, 0, frame.width, frame.height);
    }
    const lut = this.luts[this.colormap] ?? Object.values(this.luts)[0];
    const [mh, mw] = r.mapSize;
    const cells = mh * mw;
    const k = r.ids.length;
    // The "none" class (no digit) has no map worth drawing: its map is left off, the picture stays clear.
    const hidden = (i: number): boolean => r.ids[i] === this.hiddenClass;
    const single = this.choice === 'max' || k === 0 ? undefined : this.choice === 'shown' ? r.shown : Math.min(this.choice, k - 1);
    if (lut && k > 0 && cells > 0 && (single === undefined || !hidden(single))) {
      let map: Uint8Array;
      if (this.choice === 'max') {
        map = new Uint8Array(cells);
        for (let i = 0; i < k; i++) if (!hidden(i)) for (let c = 0; c < cells; c++) map[c] = Math.max(map[c], r.maps[i * cells + c]);
      } else {
        const i = this.choice === 'shown' ? r.shown : Math.min(this.choice, k - 1);
        map = r.maps.subarray(i * cells, (i + 1) * cells);
      }
      this.renderer.draw({ map, mapSize: r.mapSize, content: r.mapContent, lut, opacity: this.opacity });
    } else {
      this.renderer.clear();
    }
    this.drawBoxes(boxes, r);
    this.last = r;
    this.drawnFrames++;
    this.dispatchEvent(new CustomEvent<CamDrawnDetail>('cam-drawn', { detail: { result: r, drawnAt: performance.now() }, bubbles: true, composed: true }));
  }

  private drawBoxes(canvas: HTMLCanvasElement, r: ResultMessage): void {
    const ctx = canvas.getContext('2d')!;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.showBoxes) return;
    const k = r.ids.length;
    const only = this.choice === 'max' ? undefined : this.choice === 'shown' ? r.shown : Math.min(this.choice, k - 1);
    ctx.lineWidth = Math.max(2, canvas.width / 320);
    ctx.font = `${Math.max(12, Math.round(canvas.width / 45))}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    for (let i = 0; i < k; i++) {
      if ((only !== undefined && i !== only) || r.ids[i] === this.hiddenClass) continue;
      const b = r.boxes.subarray(4 * i, 4 * i + 4);
      if (Number.isNaN(b[0])) continue;
      const x = b[0] * canvas.width;
      const y = b[1] * canvas.height;
      const w = (b[2] - b[0]) * canvas.width;
      const h = (b[3] - b[1]) * canvas.height;
      ctx.strokeStyle = i === r.shown ? '#00e676' : '#ffd54f';
      ctx.strokeRect(x, y, w, h);
      const label = `${r.labels[i] ?? r.ids[i]} ${(100 * r.probabilities[i]).toFixed(0)}%`;
      const tw = ctx.measureText(label).width + 8;
      const th = parseInt(ctx.font, 10) + 6;
      ctx.fillStyle = 'rgba(0,0,0,0.6)';
      ctx.fillRect(x, Math.max(0, y - th), tw, th);
      ctx.fillStyle = '#fff';
      ctx.fillText(label, x + 4, Math.max(0, y - th) + 3);
    }
  }

  protected override render() {
    const gl = this.renderer?.kind !== '2d';
    return html`
      <div class="stage" style="aspect-ratio: ${this.aspect}" role="img" aria-label="the picture with the class activation map over it">
        <video
          class=${this.mode === 'webcam' ? '' : 'hidden'}
          playsinline
          muted
          aria-label="camera"
          @loadedmetadata=${this.onVideoSize}
          @resize=${this.onVideoSize}
        ></video>
        <canvas aria-hidden="true" class="frame ${this.mode === 'server' ? '' : 'hidden'}"></canvas>
        <canvas aria-hidden="true" class="gl overlay ${gl ? '' : 'hidden'}"></canvas>
        <canvas aria-hidden="true" class="c2d overlay ${gl ? 'hidden' : ''}"></canvas>
        <canvas aria-hidden="true" class="boxes"></canvas>
        ${this.mode === 'none' ? html`<div class="empty">Start the camera, or pick a source</div>` : ''}
      </div>
    `;
  }
}
