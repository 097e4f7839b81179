import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccessKeyEntity } from './access-key.entity';
import { AccountEntity } from './account.entity';
import { AccountsService } from './accounts.service';
import { CredentialStore } from './credential-store';

export const ACCOUNT_ENTITIES = [AccountEntity, AccessKeyEntity];

@Module({
  imports: [TypeOrmModule.forFeature(ACCOUNT_ENTITIES)],
  providers: [AccountsService, CredentialStore],
  exports: [AccountsService, CredentialStore, TypeOrmModule],
})
export class AccountsModule {}
