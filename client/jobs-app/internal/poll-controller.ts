/**
 * `PollController`: calls `poll()` now and then every `interval()` ms after each call settles, while its host
 * is connected; `hostDisconnected` cancels the pending timer. `again()` polls at once (after an action).
 */
import type { ReactiveController, ReactiveControllerHost } from 'lit';

export class PollController implements ReactiveController {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private connected = false;

  constructor(
    host: ReactiveControllerHost,
    private readonly poll: () => Promise<void>,
    private readonly interval: () => number,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.connected = true;
    void this.again();
  }

  hostDisconnected(): void {
    this.connected = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async again(): Promise<void> {
    clearTimeout(this.timer);
    await this.poll();
    if (this.connected) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.again(), this.interval());
    }
  }
}
