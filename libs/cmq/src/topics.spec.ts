import { cmqErrorOf } from '@app/testing/cmq-error';
import { decodeForm } from './form';
import { ParamReader } from './params';
import {
  assertEndpoint,
  bindingPattern,
  readBindingKeys,
  readFilterTags,
  readMsgTags,
  readRoutingKey,
  routingMatches,
} from './topics';

function params(form: string): ParamReader {
  return new ParamReader(decodeForm(form));
}

/** `a.b.c…` of n words. */
function words(n: number, w = 'w'): string {
  return Array.from({ length: n }, (_, i) => `${w}${i}`).join('.');
}

/**
 * Routing keys against binding keys (RabbitMQ topic semantics): `*` is exactly one word, `#` zero
 * or more, at the start, in the middle and at the end.
 */
const ROUTING: Array<[binding: string, routing: string, matches: boolean]> = [
  ['a.b.c', 'a.b.c', true],
  ['a.b.c', 'a.b', false],
  ['a.b.c', 'a.b.c.d', false],
  ['a.b.c', 'A.b.c', false],
  // * at the start, middle, end
  ['*.b.c', 'x.b.c', true],
  ['*.b.c', 'b.c', false],
  ['*.b.c', 'x.y.b.c', false],
  ['a.*.c', 'a.x.c', true],
  ['a.*.c', 'a.c', false],
  ['a.*.c', 'a.x.y.c', false],
  ['a.b.*', 'a.b.x', true],
  ['a.b.*', 'a.b', false],
  ['a.b.*', 'a.b.x.y', false],
  ['*', 'x', true],
  ['*', 'x.y', false],
  ['*.*', 'x.y', true],
  // # at the start, middle, end: zero words too
  ['#.c', 'c', true],
  ['#.c', 'a.b.c', true],
  ['#.c', 'a.b.c.d', false],
  ['a.#.c', 'a.c', true],
  ['a.#.c', 'a.x.c', true],
  ['a.#.c', 'a.x.y.z.c', true],
  ['a.#.c', 'a.x.y.z.d', false],
  ['a.#', 'a', true],
  ['a.#', 'a.b.c.d', true],
  ['a.#', 'b.a', false],
  ['#', 'anything.at.all', true],
  ['#', 'x', true],
  ['#.#', 'x.y', true],
  ['*.#', 'x', true],
  ['*.#', 'x.y.z', true],
  ['#.*', 'x', true],
  ['a.*.#.z', 'a.b.z', true],
  ['a.*.#.z', 'a.z', false],
  // wildcards only as whole words; other pattern characters are literal
  ['a*.b', 'ab.b', false],
  ['a*.b', 'a*.b', true],
  ['a#.b', 'a#.b', true],
  ['a+b.(c)', 'a+b.(c)', true],
  ['a+b.(c)', 'aab.c', false],
  ['[x]', 'x', false],
  ['[x]', '[x]', true],
  ['订单.*', '订单.创建', true],
  // up to 15 dots (16 words)
  [words(16), words(16), true],
  ['#.w15', words(16), true],
  ['w0.#', words(16), true],
  ['w0.#.w15', words(16), true],
  [`${words(15)}.*`, words(16), true],
  [`*.${words(16)}`, words(16), false],
  [Array.from({ length: 16 }, () => '*').join('.'), words(16), true],
  [Array.from({ length: 15 }, () => '*').join('.'), words(16), false],
];

describe('routing-key matching (filterType 2)', () => {
  it.each(ROUTING)('binding %s vs routing %s → %s', (binding, routing, expected) => {
    expect(routingMatches(binding, routing)).toBe(expected);
  });

  it('builds anchored patterns with each word taking its leading dot', () => {
    expect(bindingPattern('a.*.#')).toBe('^\\.a\\.[^.]*(?:\\.[^.]*)*$');
  });
});

describe('topic parameters', () => {
  it('reads at most 5 distinct msgTags of 1–16 characters', () => {
    expect(readMsgTags(params('msgTag.1=a&msgTag.2=b&msgTag.3=a'))).toEqual(['a', 'b']);
    expect(readMsgTags(params(''))).toEqual([]);
    expect(cmqErrorOf(() => readMsgTags(params('msgTag.1=a&msgTag.2=b&msgTag.3=c&msgTag.4=d&msgTag.5=e&msgTag.6=f')))).toBe(
      '4000 (10720)too many msgTag',
    );
    expect(cmqErrorOf(() => readMsgTags(params(`msgTag.1=${'x'.repeat(17)}`)))).toBe(
      '4000 (10350)parameter msgTag value or length is out of range',
    );
    expect(cmqErrorOf(() => readMsgTags(params('msgTag.1=')))).toBe('4000 (10350)parameter msgTag value or length is out of range');
    expect(cmqErrorOf(() => readMsgTags(params('msgTag.1=a%1Fb')))).toBe('4000 (10350)parameter msgTag value or length is out of range');
  });

  it('reads filter tags and binding keys with their own limits', () => {
    expect(readFilterTags(params(''))).toBeUndefined();
    expect(readFilterTags(params('filterTag.0=x&filterTag.1=y'))).toEqual(['x', 'y']);
    expect(cmqErrorOf(() => readFilterTags(params(Array.from({ length: 6 }, (_, i) => `filterTag.${i + 1}=t${i}`).join('&'))))).toBe(
      '4000 (10670)too many filterTag',
    );
    expect(readBindingKeys(params('bindingKey.1=a.*'))).toEqual(['a.*']);
    expect(cmqErrorOf(() => readBindingKeys(params(Array.from({ length: 6 }, (_, i) => `bindingKey.${i + 1}=k${i}`).join('&'))))).toBe(
      '4000 (10680)too many bindingKey',
    );
    expect(cmqErrorOf(() => readBindingKeys(params(`bindingKey.1=${words(17)}`)))).toBe('4000 (10691)too many delimeters');
    expect(cmqErrorOf(() => readBindingKeys(params(`bindingKey.1=${'k'.repeat(65)}`)))).toBe(
      '4000 (10350)parameter bindingKey value or length is out of range',
    );
  });

  it('needs a routing key only on routing topics, and checks it on both', () => {
    expect(readRoutingKey(params('routingKey='), 1)).toBeNull();
    expect(readRoutingKey(params(''), 1)).toBeNull();
    expect(readRoutingKey(params(`routingKey=${words(16)}`), 2)).toBe(words(16));
    expect(cmqErrorOf(() => readRoutingKey(params('routingKey='), 2))).toBe('4000 (10700)parameters lack of routingKey');
    expect(cmqErrorOf(() => readRoutingKey(params(''), 2))).toBe('4000 (10700)parameters lack of routingKey');
    expect(cmqErrorOf(() => readRoutingKey(params(`routingKey=${words(17)}`), 2))).toBe('4000 (10691)too many delimeters');
    expect(cmqErrorOf(() => readRoutingKey(params(`routingKey=${'r'.repeat(65)}`), 1))).toBe(
      '4000 (10350)parameter routingKey value or length is out of range',
    );
  });

  it('checks endpoints by protocol', () => {
    expect(assertEndpoint('http', 'http://127.0.0.1:9000/push')).toBe('http://127.0.0.1:9000/push');
    expect(assertEndpoint('http', 'HTTPS://example.com/x?y=1')).toBe('HTTPS://example.com/x?y=1');
    expect(assertEndpoint('queue', 'orders')).toBe('orders');
    expect(cmqErrorOf(() => assertEndpoint('http', 'http://exa mple.com/'))).toBe('4510 (10570)url connot contain any blank characters');
    expect(cmqErrorOf(() => assertEndpoint('http', 'ftp://example.com/'))).toBe('4000 (10500)endpoint format error');
    expect(cmqErrorOf(() => assertEndpoint('http', 'http://'))).toBe('4000 (10500)endpoint format error');
    expect(cmqErrorOf(() => assertEndpoint('http', 'http://user:pw@example.com/'))).toBe('4000 (10630)illegal endpoint');
    expect(cmqErrorOf(() => assertEndpoint('http', 'http://169.254.169.254/latest'))).toBe('4000 (10630)illegal endpoint');
    expect(cmqErrorOf(() => assertEndpoint('http', `http://example.com/${'x'.repeat(500)}`))).toBe(
      '4000 (10350)parameter endpoint value or length is out of range',
    );
    expect(cmqErrorOf(() => assertEndpoint('queue', '1bad'))).toBe('4000 (10500)endpoint format error');
  });

  it.each(['http://x/\u0000', 'http://x/a\u0007b', 'http://x/\u007f', 'http://x/?q=\u001b'])('refuses control characters in an endpoint (%j)', (endpoint) => {
    expect(cmqErrorOf(() => assertEndpoint('http', endpoint))).toBe('4000 (10500)endpoint format error');
  });

  it.each([
    'http://2852039166/',
    'http://0xa9fea9fe/',
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/latest',
    'http://[0:0:0:0:0:ffff:a9fe:a9fe]/',
    'http://[::169.254.169.254]/',
    'http://[64:ff9b::169.254.169.254]/',
    'http://[fd00:ec2::254]/',
    'http://[FD00:EC2:0::254]/',
  ])('refuses the metadata address however it is written (%s)', (endpoint) => {
    expect(cmqErrorOf(() => assertEndpoint('http', endpoint))).toBe('4000 (10630)illegal endpoint');
  });

  it('takes IPv6 receivers that are not the metadata address', () => {
    expect(assertEndpoint('http', 'http://[::1]:9000/push')).toBe('http://[::1]:9000/push');
    expect(assertEndpoint('http', 'http://[::ffff:10.0.0.1]/')).toBe('http://[::ffff:10.0.0.1]/');
  });
});
