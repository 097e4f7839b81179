import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type AccountStatus = 'active' | 'overdue' | 'suspended' | 'released';

@Entity({ name: 'accounts' })
export class AccountEntity {
  @PrimaryColumn('uuid')
  id: string;

  /** the numeric app id CMQ shows as an owner (e.g. a topic's TopicOwner) */
  @Column({ name: 'app_id', type: 'bigint', insert: false, update: false })
  appId: string;

  @Column('text')
  name: string;

  /** home region */
  @Column('text')
  region: string;

  @Column('text')
  status: AccountStatus;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
