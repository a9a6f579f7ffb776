import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../src/services/storage/keyed-mutex.js';

/** A promise the test resolves by hand, to hold a lock open exactly as long as it wants. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('KeyedMutex', () => {
  it('runs holders of one key one at a time, in arrival order', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    const first = gate();
    const a = mutex.run('k', async () => {
      order.push('a:start');
      await first.promise;
      order.push('a:end');
    });
    const b = mutex.run('k', () => {
      order.push('b');
      return Promise.resolve();
    });
    const c = mutex.run('k', () => {
      order.push('c');
      return Promise.resolve();
    });
    await Promise.resolve();
    expect(order).toEqual(['a:start']);
    first.open();
    await Promise.all([a, b, c]);
    expect(order).toEqual(['a:start', 'a:end', 'b', 'c']);
  });

  it('does not hold up other keys', async () => {
    const mutex = new KeyedMutex();
    const held = gate();
    const slow = mutex.run('a', () => held.promise);
    expect(await mutex.run('b', () => Promise.resolve('b ran'))).toBe('b ran');
    held.open();
    await slow;
  });

  it('releases the key when the holder throws, and passes the error on', async () => {
    const mutex = new KeyedMutex();
    await expect(mutex.run('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await mutex.run('k', () => Promise.resolve('next'))).toBe('next');
  });

  it('forgets idle keys', async () => {
    const mutex = new KeyedMutex();
    await Promise.all(Array.from({ length: 100 }, (_, i) => mutex.run(`key-${i % 10}`, () => Promise.resolve(i))));
    await mutex.run('x', () => Promise.reject(new Error('x'))).catch(() => undefined);
    expect(mutex.size).toBe(0);
  });

  it('keeps a read-modify-write correct under concurrency', async () => {
    const mutex = new KeyedMutex();
    let value = 0;
    await Promise.all(
      Array.from({ length: 50 }, () =>
        mutex.run('counter', async () => {
          const read = value;
          await new Promise((r) => setImmediate(r));
          value = read + 1;
        }),
      ),
    );
    expect(value).toBe(50);
  });
});
