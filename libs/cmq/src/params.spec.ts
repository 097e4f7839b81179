import { cmqErrorOf } from '@app/testing/cmq-error';
import { decodeForm } from './form';
import { ParamReader, parseIntParam } from './params';
import { assertQueueName } from './limits';
import { clientRequestIdDigits, serializeReply } from './response';


const reader = (s: string) => new ParamReader(decodeForm(s));

describe('ParamReader', () => {
  it('reads arrays 1-based and 0-based, ordered numerically', () => {
    const one = reader(Array.from({ length: 12 }, (_, i) => `msgBody.${12 - i}=m${12 - i}`).join('&'));
    expect(one.array('msgBody', 16)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i + 1}`));
    expect(reader('msgBody.0=a&msgBody.1=b').array('msgBody', 16)).toEqual(['a', 'b']);
  });

  it('keeps empty array items (the action decides what an empty body means)', () => {
    expect(reader('msgBody.1=&msgBody.2=x').array('msgBody', 16)).toEqual(['', 'x']);
  });

  it('refuses gaps, a start above 1, and bad indices', () => {
    expect(cmqErrorOf(() => reader('msgBody.1=a&msgBody.3=b').array('msgBody', 16))).toBe(
      '4000 (10380)msgBody parameter is not consequent',
    );
    expect(cmqErrorOf(() => reader('msgBody.2=a').array('msgBody', 16))).toMatch(/^4000 \(10380\)/);
    expect(cmqErrorOf(() => reader('msgBody.1=a&msgBody.01=b').array('msgBody', 16))).toMatch(/^4000 \(10380\)/);
    expect(cmqErrorOf(() => reader('msgBody.x=a').array('msgBody', 16))).toMatch(/^4000 \(10310\)/);
  });

  it('refuses more than the batch limit (10370) and a missing array (10390)', () => {
    const s = Array.from({ length: 17 }, (_, i) => `msgBody.${i + 1}=x`).join('&');
    expect(cmqErrorOf(() => reader(s).array('msgBody', 16))).toBe('4000 (10370)msgBody parameter batch size is out of range');
    expect(cmqErrorOf(() => reader('a=1').array('msgBody', 16))).toBe('4000 (10390)lacked of required parameter msgBody');
  });

  it('refuses a scalar given as an array (10330)', () => {
    expect(cmqErrorOf(() => reader('queueName.1=q').string('queueName'))).toBe(
      '4000 (10330)parameter queueName is NOT a repeatable parameter',
    );
  });

  it('reads integers strictly: type (10360), range (10350), huge numbers, clamping', () => {
    const opts = { min: 0, max: 30 };
    expect(parseIntParam('w', '30', opts)).toBe(30);
    expect(parseIntParam('w', '007', opts)).toBe(7);
    expect(cmqErrorOf(() => parseIntParam('w', '1.5', opts))).toBe('4000 (10360)parameter w error type');
    expect(cmqErrorOf(() => parseIntParam('w', '', opts))).toMatch(/10360/);
    expect(cmqErrorOf(() => parseIntParam('w', '1e3', opts))).toMatch(/10360/);
    expect(cmqErrorOf(() => parseIntParam('w', ' 1', opts))).toMatch(/10360/);
    expect(cmqErrorOf(() => parseIntParam('w', '31', opts))).toBe('4000 (10350)parameter w value or length is out of range');
    expect(cmqErrorOf(() => parseIntParam('w', '-1', opts))).toMatch(/10350/);
    expect(cmqErrorOf(() => parseIntParam('w', '99999999999999999999999', opts))).toMatch(/10350/);
    expect(cmqErrorOf(() => parseIntParam('w', '-99999999999999999999999', opts))).toMatch(/10350/);
    expect(parseIntParam('w', '30000', { ...opts, clampAbove: true })).toBe(30);
    expect(parseIntParam('w', '99999999999999999999999', { ...opts, clampAbove: true })).toBe(30);
  });
});

describe('limits', () => {
  it.each(['a', 'Orders', 'q-1_2', 'a'.repeat(64)])('accepts queue name %s', (n) => {
    expect(assertQueueName(n)).toBe(n);
  });
  it.each(['', '1q', '-q', 'a'.repeat(65), "q'; drop table queues;--", 'q q', 'q.1', '队列', 'q%00'])(
    'refuses queue name %j with 4000/10020',
    (n) => {
      expect(cmqErrorOf(() => assertQueueName(n))).toBe('4000 (10020)queue name format error');
    },
  );
});

describe('replies', () => {
  it('echoes clientRequestId as a number, 0 when absent or invalid, uint64 exact', () => {
    expect(clientRequestIdDigits(undefined)).toBe('0');
    expect(clientRequestIdDigits('abc')).toBe('0');
    expect(clientRequestIdDigits('18446744073709551615')).toBe('18446744073709551615');
    expect(clientRequestIdDigits('18446744073709551616')).toBe('0');
    expect(clientRequestIdDigits('0042')).toBe('42');
  });

  it('writes code, message, requestId first and the fields flat', () => {
    const s = serializeReply(0, '', '123', '18446744073709551615', { msgId: '9' });
    expect(s).toBe('{"code":0,"message":"","requestId":"123","clientRequestId":18446744073709551615,"msgId":"9"}');
    expect(serializeReply(7000, '(10200)no message', '1', '0', {})).toBe(
      '{"code":7000,"message":"(10200)no message","requestId":"1","clientRequestId":0}',
    );
  });
});
