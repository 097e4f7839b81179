import { actionClass, billableCalls, outcomeOf, sizeWeight } from './metering';

const KIB = 1024;

describe('metering rules', () => {
  it('classes actions case-insensitively; everything else is management', () => {
    expect(actionClass('sendmessage')).toBe('send');
    expect(actionClass('BatchReceiveMessage')).toBe('consume');
    expect(actionClass('BatchDeleteMessage')).toBe('ack');
    expect(actionClass('CreateQueue')).toBe('management');
    expect(actionClass('RewindQueue')).toBe('management');
  });

  it('maps reply codes to outcomes', () => {
    expect([0, 7000, 4420, 4300, 6000, 6010, 6020, 6040, 6050, 4000, 4440, 4100].map(outcomeOf)).toEqual([
      'ok',
      'no_message',
      'throttled',
      'overdue',
      'server_error',
      'ok',
      'client_error',
      'client_error',
      'client_error',
      'client_error',
      'client_error',
      'client_error',
    ]);
  });

  it.each([
    [1, 1],
    [2 * KIB, 1],
    [2 * KIB + 1, 2],
    [4 * KIB, 2],
    [4 * KIB + 1, 4],
    [16 * KIB, 4],
    [16 * KIB + 1, 16],
    [100 * KIB, 16],
    [100 * KIB + 1, 64],
    [1024 * KIB, 64],
  ])('a %d-byte message weighs %d under the size bands', (bytes, weight) => {
    expect(sizeWeight(bytes)).toBe(weight);
  });

  it('size bands: batches per message, empty receive 1, delete per handle, only ok and no_message billed', () => {
    const rule = 'size_bands';
    expect(billableCalls(rule, { action: 'BatchSendMessage', outcome: 'ok', messageBytes: [10, 3 * KIB, 20 * KIB] })).toBe(1 + 2 + 16);
    expect(billableCalls(rule, { action: 'ReceiveMessage', outcome: 'no_message', messageBytes: [] })).toBe(1);
    expect(billableCalls(rule, { action: 'BatchDeleteMessage', outcome: 'ok', messageBytes: [], handles: 16 })).toBe(16);
    expect(billableCalls(rule, { action: 'SendMessage', outcome: 'throttled', messageBytes: [10] })).toBe(0);
    expect(billableCalls(rule, { action: 'SendMessage', outcome: 'server_error', messageBytes: [10] })).toBe(0);
    expect(billableCalls(rule, { action: 'SendMessage', outcome: 'overdue', messageBytes: [10] })).toBe(0);
    expect(billableCalls(rule, { action: 'CreateQueue', outcome: 'ok', messageBytes: [] })).toBe(0);
  });

  it('per 64 KiB: every started 64 KiB of the request, at least one per request', () => {
    const rule = 'per_64k';
    expect(billableCalls(rule, { action: 'BatchSendMessage', outcome: 'ok', messageBytes: Array(16).fill(1) })).toBe(1);
    expect(billableCalls(rule, { action: 'BatchSendMessage', outcome: 'ok', messageBytes: [64 * KIB, 1] })).toBe(2);
    expect(billableCalls(rule, { action: 'BatchDeleteMessage', outcome: 'ok', messageBytes: [], handles: 16 })).toBe(1);
    expect(billableCalls(rule, { action: 'ReceiveMessage', outcome: 'no_message', messageBytes: [] })).toBe(1);
  });
});
