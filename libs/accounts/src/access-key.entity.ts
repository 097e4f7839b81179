import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type AccessKeyStatus = 'enabled' | 'disabled';

@Entity({ name: 'access_keys' })
export class AccessKeyEntity {
  @PrimaryColumn({ name: 'secret_id', type: 'text' })
  secretId: string;

  @Column({ name: 'account_id', type: 'uuid' })
  accountId: string;

  /** AES-256-GCM under the master key; see SecretBox */
  @Column({ name: 'secret_key_enc', type: 'bytea', select: false })
  secretKeyEnc: Buffer;

  @Column('text')
  status: AccessKeyStatus;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
