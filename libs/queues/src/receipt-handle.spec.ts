import { decodeReceiptHandle, encodeReceiptHandle } from './message-store';

/** The official Go SDK refuses, client-side, any handle outside this pattern. */
const GO_SDK_HANDLE = /^[a-zA-Z0-9%#:_-]{0,256}$/;

describe('receipt handles', () => {
  it('fit the Go SDK alphabet and length, at the largest ids', () => {
    const h = encodeReceiptHandle('9223372036854775807', '9007199254740991');
    expect(h).toMatch(GO_SDK_HANDLE);
    expect(decodeReceiptHandle(h)).toEqual({ msgId: '9223372036854775807', receipt: '9007199254740991' });
  });

  it.each(['', '1', '1-', '-1', '1-2-3', 'a-1', '1 -2', '99999999999999999999-1', '9223372036854775808-1', "1' OR 1=1", '5-0', '5-000'])(
    'decodes %j as no handle',
    (h) => {
      expect(decodeReceiptHandle(h)).toBeNull();
    },
  );
});
