/**
 * The browser's webcam as a ReactiveController: getUserMedia, and a capture loop that downsizes each
 * video frame in the browser to (about) the model's input size, encodes it (JPEG by default, or raw RGB)
 * and hands it to `send`. At most `maxInFlight` frames go unanswered (the server drops the rest anyway),
 * so the camera never floods the socket. Tracks are stopped in hostDisconnected and on `stop()`.
 */
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { FrameEncoding, type FrameMessage } from '../../protocol/index.ts';

/** A captured webcam frame: the wire's frame message, `captureMs` being performance.now() at capture. */
export type CapturedFrame = FrameMessage;

/** What a failed getUserMedia means for the user, and what to do about it. */
export function cameraProblem(err: unknown): string {
  const name = (err as { name?: string } | undefined)?.name;
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera access was denied. Allow the camera for this site (the camera icon in the address bar), then press "Start the camera" again, or pick a file source.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect one and press "Start the camera" again, or pick a file source.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not start: another application may be using it. Close it and press "Start the camera" again.';
    case 'InsecureContext':
      return 'This browser offers no camera to this page: open it over https or at localhost.';
    default:
      return `The camera could not start (${name ?? 'error'}: ${(err as Error | undefined)?.message ?? String(err)}).`;
  }
}

/** The sent frame's `[width, height]`, fixed or computed from the camera's own size at each capture. */
export type FrameSize = [number, number] | ((videoWidth: number, videoHeight: number) => [number, number]);

export class CameraController implements ReactiveController {
  stream: MediaStream | undefined;
  error: string | undefined;
  /** Frames sent and the latest frame id answered by the server. */
  sentFrames = 0;
  private lastAnswered = -1;
  private lastSent = -1;
  private lastSentAt = 0;
  private nextId = 0;
  private video: HTMLVideoElement | undefined;
  private canvas: HTMLCanvasElement | undefined;
  private running = false;
  private encoding: 'jpeg' | 'rgb' = 'jpeg';
  private size: FrameSize = [224, 224];
  private timer: number | undefined;
  private busy = false;

  constructor(
    private readonly host: ReactiveControllerHost,
    private readonly send: (frame: CapturedFrame) => boolean,
    private readonly options: { maxInFlight?: number; targetFps?: number; jpegQuality?: number } = {},
  ) {
    host.addController(this);
  }

  hostConnected(): void {}

  hostDisconnected(): void {
    this.stop();
  }

  /** Opens the camera and starts capturing from `video` at `size` ([width, height], or a function of the camera's size). */
  async start(video: HTMLVideoElement, size: FrameSize, encoding: 'jpeg' | 'rgb' = 'jpeg'): Promise<void> {
    this.stop();
    this.size = size;
    this.encoding = encoding;
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('no mediaDevices'), { name: 'InsecureContext' });
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      this.error = cameraProblem(err);
      this.host.requestUpdate();
      return;
    }
    this.error = undefined;
    this.video = video;
    video.srcObject = this.stream;
    video.muted = true;
    await video.play().catch(() => {});
    this.canvas = document.createElement('canvas');
    this.running = true;
    this.schedule();
    this.host.requestUpdate();
  }

  stop(): void {
    this.running = false;
    window.clearTimeout(this.timer);
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    if (this.video) this.video.srcObject = null;
    this.stream = undefined;
    this.video = undefined;
  }

  /** The server answered frames up to `frameId` (later ones of a dropped run are answered implicitly). */
  answered(frameId: number): void {
    if (frameId > this.lastAnswered) this.lastAnswered = frameId;
  }

  private schedule(): void {
    if (!this.running) return;
    const fps = this.options.targetFps ?? 30;
    this.timer = window.setTimeout(() => void this.capture().finally(() => this.schedule()), 1000 / fps);
  }

  private async capture(): Promise<void> {
    const video = this.video;
    const canvas = this.canvas;
    if (!video || !canvas || this.busy || video.readyState < 2 || video.videoWidth === 0) return;
    const maxInFlight = this.options.maxInFlight ?? 2;
    // Unanswered frames: the server drops all but the latest, so more in flight only adds latency.
    // A frame answered by nothing for 2 s (dropped, reconnect) stops counting.
    const now = performance.now();
    if (this.lastSent - this.lastAnswered >= maxInFlight && now - this.lastSentAt < 2000) return;
    this.busy = true;
    try {
      const [w, h] = typeof this.size === 'function' ? this.size(video.videoWidth, video.videoHeight) : this.size;
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext('2d', { willReadFrequently: this.encoding === 'rgb' })!;
      ctx.drawImage(video, 0, 0, w, h);
      const captureMs = performance.now();
      let payload: Uint8Array;
      if (this.encoding === 'rgb') {
        const rgba = ctx.getImageData(0, 0, w, h).data;
        payload = new Uint8Array(w * h * 3);
        for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
          payload[j] = rgba[i];
          payload[j + 1] = rgba[i + 1];
          payload[j + 2] = rgba[i + 2];
        }
      } else {
        const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', this.options.jpegQuality ?? 0.85));
        if (!blob) return;
        payload = new Uint8Array(await blob.arrayBuffer());
      }
      // Stopped while encoding (the page chose another source): a late frame would select the webcam again.
      if (!this.running || this.video !== video) return;
      const frameId = this.nextId++;
      if (this.send({ frameId, captureMs, encoding: this.encoding === 'jpeg' ? FrameEncoding.Jpeg : FrameEncoding.Rgb, width: w, height: h, payload })) {
        this.lastSent = frameId;
        this.lastSentAt = performance.now();
        this.sentFrames++;
      }
    } finally {
      this.busy = false;
    }
  }
}
