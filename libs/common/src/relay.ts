/**
 * Gathers items committed elsewhere (outbox row ids, push ids) for `intervalMs`, or until
 * `maxItems` are waiting, and hands them on in one call; calls run one after another. A call
 * that fails is reported to `failed` and not retried: the items' rows are the truth, and a
 * resend tick finds what a lost call left behind.
 */
export class Relay<T> {
  private pending: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly failed: (err: Error, items: T[]) => void,
    private readonly intervalMs: number,
    private readonly maxItems = Number.POSITIVE_INFINITY,
  ) {}

  add(items: readonly T[]): void {
    if (items.length === 0) return;
    this.pending.push(...items);
    if (this.pending.length >= this.maxItems) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.intervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const items = this.pending;
    this.pending = [];
    if (items.length === 0) return;
    this.flushing = this.flushing.then(() => this.send(items).catch((err: Error) => this.failed(err, items)));
  }

  /** Hands on what is waiting and resolves once every call made so far has ended. */
  async close(): Promise<void> {
    this.flush();
    await this.flushing;
  }
}
