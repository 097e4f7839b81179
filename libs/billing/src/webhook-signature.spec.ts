import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from './webhook-signature';

describe('webhook signatures', () => {
  const body = '{"id":"7","kind":"overdue"}';

  it('is sha256= and the hex HMAC-SHA256 of "<timestamp>.<body>" under the secret', () => {
    const expected = createHmac('sha256', 'whsec-0123456789abcdef').update('1764000000.' + body).digest('hex');
    expect(signWebhook('whsec-0123456789abcdef', '1764000000', body)).toBe(`sha256=${expected}`);
    // a vector computed with openssl dgst -sha256 -hmac, so a change of the scheme cannot pass unnoticed
    expect(signWebhook('whsec-0123456789abcdef', '1764000000', body)).toBe('sha256=f23c6da67ff7dbe11579359b9b0bbc1cb0291c04ae2933032462bfc12ccb9355');
  });

  it('verifies only the same secret, timestamp and body', () => {
    const sig = signWebhook('s3cret-s3cret-s3cret', '1764000000', body);
    expect(verifyWebhook('s3cret-s3cret-s3cret', '1764000000', body, sig)).toBe(true);
    expect(verifyWebhook('other-secret-value!!', '1764000000', body, sig)).toBe(false);
    expect(verifyWebhook('s3cret-s3cret-s3cret', '1764000001', body, sig)).toBe(false);
    expect(verifyWebhook('s3cret-s3cret-s3cret', '1764000000', body + ' ', sig)).toBe(false);
    expect(verifyWebhook('s3cret-s3cret-s3cret', '1764000000', body, 'sha256=00')).toBe(false);
  });
});
