import { sign, sourceString, verifySignature } from './signature';
import { decodeForm } from './form';

const TENCENT_KEY = 'pPgfLipfEXZ7VcRzhAMIyPaU7UbQyFFx';
const TENCENT_SOURCE =
  'POSTcmq-queue-gz.api.tencentyun.com/v2/index.php?Action=SendMessage&Nonce=2889712707386595659&RequestClient=SDK_Python_1.3&SecretId=AKIDPcYDclDJCn8D0Xypa4f3pKYUCVYLn3zT&SignatureMethod=HmacSHA1&Timestamp=1534154812&clientRequestId=1231231231&delaySeconds=0&msgBody=msg&queueName=test1';

describe('signature', () => {
  it("reproduces Tencent's published HMAC-SHA1 vector", () => {
    expect(sign(TENCENT_SOURCE, TENCENT_KEY, 'sha1')).toBe('C16WEtEXsD5v5tnaUMLAbZewXhI=');
  });

  it("reproduces the spec's HMAC-SHA256 vector (the same string, SignatureMethod=HmacSHA256)", () => {
    const src = TENCENT_SOURCE.replace('SignatureMethod=HmacSHA1', 'SignatureMethod=HmacSHA256');
    expect(sign(src, TENCENT_KEY, 'sha256')).toBe('7aNNVzszJftqWPLvvnHU3lDznBYFPof7ACkTD3OJUu4=');
  });

  it('reproduces the local vector (space kept raw in the source string)', () => {
    const src =
      'POST127.0.0.1:8080/v2/index.php?Action=SendMessage&Nonce=12345&RequestClient=SDK_Python_1.3&SecretId=AKIDtest&SignatureMethod=HmacSHA1&Timestamp=1700000000&delaySeconds=0&msgBody=hello world&queueName=q1';
    expect(sign(src, 'secretkey123', 'sha1')).toBe('lbVWKK8PvLK4k0y0/gyieoIj1Ls=');
  });

  it('builds the source string from decoded, sorted parameters without Signature', () => {
    const params = decodeForm(
      'queueName=test1&msgBody=msg&delaySeconds=0&clientRequestId=1231231231&Timestamp=1534154812&SignatureMethod=HmacSHA1&SecretId=AKIDPcYDclDJCn8D0Xypa4f3pKYUCVYLn3zT&RequestClient=SDK_Python_1.3&Nonce=2889712707386595659&Action=SendMessage&Signature=xyz',
    );
    expect(sourceString('post', 'cmq-queue-gz.api.tencentyun.com', '/v2/index.php', params)).toBe(TENCENT_SOURCE);
  });

  it('writes `_` in keys as `.` and sorts by the original key', () => {
    const src = sourceString('GET', 'h:1', '/', [
      ['b_x', '1'],
      ['a', '2'],
    ]);
    expect(src).toBe('GETh:1/?a=2&b.x=1');
  });

  describe('verifySignature', () => {
    const base: Array<[string, string]> = [
      ['Action', 'SendMessage'],
      ['SecretId', 'AKIDtest'],
      ['Nonce', '0'],
      ['Timestamp', '1700000000'],
      ['queueName', 'q1'],
      ['msgBody', '@file'],
    ];
    const withSig = (src: string, key: string, alg: 'sha1' | 'sha256', extra: Array<[string, string]> = []) =>
      new Map<string, string>([...base, ...extra, ['Signature', sign(src, key, alg)]]);

    it('accepts the right key and refuses a wrong one', () => {
      const p = withSig(sourceString('POST', '127.0.0.1:8080', '/', base), 'k', 'sha1');
      expect(verifySignature('POST', '127.0.0.1:8080', '/', p, 'k')).toBe(true);
      expect(verifySignature('POST', '127.0.0.1:8080', '/', p, 'other')).toBe(false);
    });

    it('signs over the path the client used', () => {
      const p = withSig(sourceString('POST', '127.0.0.1:8080', '/', base), 'k', 'sha1');
      expect(verifySignature('POST', '127.0.0.1:8080', '/v2/index.php', p, 'k')).toBe(false);
    });

    it('uses SHA-256 only for HmacSHA256, SHA-1 for anything else', () => {
      const sha256 = [...base, ['SignatureMethod', 'HmacSHA256']] as Array<[string, string]>;
      const p = withSig(sourceString('POST', 'h:9', '/', sha256), 'k', 'sha256', [['SignatureMethod', 'HmacSHA256']]);
      expect(verifySignature('POST', 'h:9', '/', p, 'k')).toBe(true);
      const odd = [...base, ['SignatureMethod', 'md5']] as Array<[string, string]>;
      const q = withSig(sourceString('POST', 'h:9', '/', odd), 'k', 'sha1', [['SignatureMethod', 'md5']]);
      expect(verifySignature('POST', 'h:9', '/', q, 'k')).toBe(true);
    });

    it('accepts the @-dropping variant in POST only', () => {
      const p = withSig(sourceString('POST', 'h:9', '/', base, true), 'k', 'sha1');
      expect(verifySignature('POST', 'h:9', '/', p, 'k')).toBe(true);
      const g = withSig(sourceString('GET', 'h:9', '/', base, true), 'k', 'sha1');
      expect(verifySignature('GET', 'h:9', '/', g, 'k')).toBe(false);
    });

    it('accepts a client that signed an explicit :80 but sent a bare Host', () => {
      const p = withSig(sourceString('POST', 'example.com:80', '/', base), 'k', 'sha1');
      expect(verifySignature('POST', 'example.com', '/', p, 'k')).toBe(true);
      expect(verifySignature('POST', 'example.com:8080', '/', p, 'k')).toBe(false);
    });

    it('refuses a missing or malformed signature', () => {
      const p = new Map<string, string>(base);
      expect(verifySignature('POST', 'h', '/', p, 'k')).toBe(false);
      p.set('Signature', 'not base64 !!');
      expect(verifySignature('POST', 'h', '/', p, 'k')).toBe(false);
    });

    it('accepts only the exact Base64 of the digest, not another spelling that decodes to it', () => {
      const p = withSig(sourceString('POST', 'h:9', '/', base), 'k', 'sha1');
      const sig = p.get('Signature')!;
      expect(verifySignature('POST', 'h:9', '/', p, 'k')).toBe(true);
      // each decodes to the same 20 bytes with Buffer.from(…, 'base64')
      for (const variant of [sig + sig, sig + 'garbage', sig.replace(/=$/, ''), ` ${sig}`, `${sig.slice(0, 10)}*${sig.slice(10)}`, `${sig.slice(0, 10)}\n${sig.slice(10)}`]) {
        expect(Buffer.from(variant, 'base64').equals(Buffer.from(sig, 'base64'))).toBe(true);
        p.set('Signature', variant);
        expect([variant, verifySignature('POST', 'h:9', '/', p, 'k')]).toEqual([variant, false]);
      }
    });
  });
});
