/**
 * The `webcam` source kind: frames a browser sends over its socket (JPEG or raw, at about model size),
 * processed for that browser alone.
 */
import { type Observable, Subject } from 'rxjs';
import type { ServerMessage } from '../../protocol/index.ts';
import type { LiveInput } from '../compose/live.ts';
import { LiveSource, type SourceContext } from './live-source.ts';

/** Frames pushed by one browser; the owner is that browser's session, its only viewer. */
export class WebcamSource extends LiveSource {
  private readonly input$ = new Subject<LiveInput>();
  private size: [number, number] = [0, 0];
  /** Called when the pipeline fails on this client's data (a JPEG that does not decode). */
  onFailure: ((err: unknown) => void) | undefined;

  constructor(id: string, ctx: SourceContext) {
    super(id, 'webcam', 'webcam', ctx);
    this.state = 'live';
    this.lastStatus = { type: 'status', state: 'live' };
  }

  protected frames$(): Observable<LiveInput> {
    return this.input$;
  }

  push(frame: LiveInput): void {
    this.received++;
    if (frame.width !== this.size[0] || frame.height !== this.size[1]) {
      this.size = [frame.width, frame.height];
      this.broadcast({ ...this.describe(), viewers: this.viewers.size });
    }
    this.input$.next(frame);
  }

  describe(): ServerMessage & { type: 'source' } {
    return { type: 'source', kind: 'webcam', name: 'webcam', width: this.size[0], height: this.size[1], durationSeconds: null, seekable: false, loop: false, viewers: this.viewers.size };
  }

  protected override failed(err: unknown): void {
    super.failed(err);
    this.onFailure?.(err);
  }
}
