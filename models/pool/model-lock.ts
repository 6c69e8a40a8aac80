/**
 * One model serves every source, and engines are not re-entrant: calls take turns in arrival order. Each
 * source holds at most one frame waiting (processLatest), so this queue is at most one call per source.
 */
export class ModelLock {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** Calls waiting or running now. */
  get depth(): number {
    return this.waiting;
  }

  /** Runs `work` once every earlier call has settled; resolves or rejects with its outcome. */
  run<T>(work: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(work);
    const settled = result.then(
      () => {
        this.waiting--;
      },
      () => {
        this.waiting--;
      },
    );
    this.tail = settled;
    return result;
  }
}
