/**
 * An in-process mutex per key: callers of `run(key, …)` with the same key run one at a time, in arrival order; other
 * keys are not held up. A key's entry is deleted as soon as nobody holds or waits for it, so keys do not leak.
 *
 * It only serialises work inside this process: it is what makes the memory and SQLite backends correct, and why
 * they must have exactly one writer process.
 */
export class KeyedMutex {
  readonly #queues = new Map<string, { tail: Promise<void>; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { tail: Promise.resolve(), users: 0 };
      this.#queues.set(key, queue);
    }
    const previous = queue.tail;
    let release!: () => void;
    // Never rejects, so one failing holder cannot break the chain for the ones behind it.
    queue.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    queue.users += 1;
    try {
      await previous;
      return await fn();
    } finally {
      release();
      queue.users -= 1;
      if (queue.users === 0) this.#queues.delete(key);
    }
  }

  /** Keys currently held or waited for (for tests and diagnostics). */
  get size(): number {
    return this.#queues.size;
  }
}
