import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts SecretKeys at rest with AES-256-GCM under the configured master key. The server
 * needs the plain key to check signatures, so it cannot be hashed; a dump of the database alone
 * reveals nothing. The SecretId is bound as associated data, so a ciphertext moved to another
 * key's row does not decrypt. Layout: version(1) | key id(4) | iv(12) | tag(16) | ciphertext.
 */
export class SecretBox {
  private readonly keyId: Buffer;

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
    this.keyId = createHash('sha256').update(masterKey).digest().subarray(0, 4);
  }

  seal(plain: string, boundTo: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    cipher.setAAD(Buffer.from(boundTo, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), this.keyId, iv, cipher.getAuthTag(), ct]);
  }

  open(sealed: Buffer, boundTo: string): string {
    if (sealed.length < 1 + 4 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new Error('unsupported secret format');
    }
    if (!sealed.subarray(1, 5).equals(this.keyId)) throw new Error('secret was sealed under another master key');
    const iv = sealed.subarray(5, 5 + IV_BYTES);
    const tag = sealed.subarray(5 + IV_BYTES, 5 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey, iv);
    decipher.setAAD(Buffer.from(boundTo, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(5 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}
