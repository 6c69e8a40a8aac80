/** A requestAnimationFrame loop as a ReactiveController: runs while the host is connected. */
import type { ReactiveController, ReactiveControllerHost } from 'lit';

export class AnimationFrameController implements ReactiveController {
  private handle: number | undefined;

  constructor(
    host: ReactiveControllerHost,
    private readonly tick: (now: number) => void,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    const loop = (now: number): void => {
      this.handle = requestAnimationFrame(loop);
      this.tick(now);
    };
    this.handle = requestAnimationFrame(loop);
  }

  hostDisconnected(): void {
    if (this.handle !== undefined) cancelAnimationFrame(this.handle);
    this.handle = undefined;
  }
}
