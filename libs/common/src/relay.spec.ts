import { Relay } from './relay';

describe('Relay', () => {
  it('gathers items for the interval and hands them on in one call', async () => {
    const calls: number[][] = [];
    const relay = new Relay<number>(async (items) => void calls.push(items), () => undefined, 30);
    relay.add([1]);
    relay.add([2, 3]);
    expect(calls).toEqual([]);
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('hands on at once when maxItems are waiting, and close waits for every call', async () => {
    const calls: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const relay = new Relay<number>(
      async (items) => {
        await gate;
        calls.push(items);
      },
      () => undefined,
      10_000,
      2,
    );
    relay.add([1, 2]);
    relay.add([3]);
    const closed = relay.close();
    expect(calls).toEqual([]);
    release();
    await closed;
    expect(calls).toEqual([[1, 2], [3]]);
  });

  it('reports a failed call with its items and goes on with the next', async () => {
    const failed: Array<[string, number[]]> = [];
    const sent: number[][] = [];
    let first = true;
    const relay = new Relay<number>(
      async (items) => {
        if (first) {
          first = false;
          throw new Error('redis down');
        }
        sent.push(items);
      },
      (err, items) => failed.push([err.message, items]),
      10_000,
      1,
    );
    relay.add([1]);
    relay.add([2]);
    await relay.close();
    expect(failed).toEqual([['redis down', [1]]]);
    expect(sent).toEqual([[2]]);
  });
});
