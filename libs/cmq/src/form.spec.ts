import { cmqErrorOf } from '@app/testing/cmq-error';
import { decodeForm } from './form';


describe('decodeForm', () => {
  it('decodes + and %20 as spaces and keeps %2B as a plus', () => {
    const p = decodeForm('a=hello+world&b=hello%20world&c=1%2B1');
    expect(p.get('a')).toBe('hello world');
    expect(p.get('b')).toBe('hello world');
    expect(p.get('c')).toBe('1+1');
  });

  it('keeps empty values and keys without =', () => {
    const p = decodeForm('Region=&flag&x=1');
    expect(p.get('Region')).toBe('');
    expect(p.get('flag')).toBe('');
    expect([...p.keys()]).toEqual(['Region', 'flag', 'x']);
  });

  it('decodes UTF-8, percent-encoded or raw', () => {
    expect(decodeForm('m=%E4%BD%A0%E5%A5%BD').get('m')).toBe('你好');
    expect(decodeForm(Buffer.from('m=你好', 'utf8')).get('m')).toBe('你好');
  });

  it('keeps values as exact strings, never numbers', () => {
    expect(decodeForm('Nonce=9223372036854775807').get('Nonce')).toBe('9223372036854775807');
    expect(decodeForm('n=007').get('n')).toBe('007');
  });

  it('skips empty segments', () => {
    expect([...decodeForm('&&a=1&&').entries()]).toEqual([['a', '1']]);
    expect(decodeForm('').size).toBe(0);
  });

  it('refuses invalid UTF-8 (4000/10420)', () => {
    expect(cmqErrorOf(() => decodeForm('m=%FF%FE'))).toBe('4000 (10420)cannot parse request, or request size is more than 1MB');
    expect(cmqErrorOf(() => decodeForm(Buffer.from([0x6d, 0x3d, 0xc3, 0x28])))).toMatch(/^4000 \(10420\)/);
  });

  it('refuses broken percent escapes', () => {
    expect(cmqErrorOf(() => decodeForm('m=%zz'))).toMatch(/^4000 \(10420\)/);
    expect(cmqErrorOf(() => decodeForm('m=%4'))).toMatch(/^4000 \(10420\)/);
  });

  it('refuses a key given twice and an empty key', () => {
    expect(cmqErrorOf(() => decodeForm('a=1&a=2'))).toBe('4000 (10330)parameter a is NOT a repeatable parameter');
    expect(cmqErrorOf(() => decodeForm('=1'))).toMatch(/^4000 \(10310\)/);
  });
});
