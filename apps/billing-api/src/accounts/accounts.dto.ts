import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import type { AccessKeyEntity, AccountEntity } from '@app/accounts';
import { CursorPageQuery } from '../pagination';

export class CreateAccountDto {
  @ApiProperty({ example: 'Acme Ltd', maxLength: 128 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(128)
  name: string;

  @ApiPropertyOptional({ example: 'gz', description: "home region; one of the deployment's REGIONS (default: the first)" })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{1,15}$/, { message: 'region must be a region code such as gz' })
  region?: string;
}

export class AccountView {
  @ApiProperty() id: string;
  @ApiProperty({ description: 'numeric app id, as CMQ shows owners' }) appId: string;
  @ApiProperty() name: string;
  @ApiProperty() region: string;
  @ApiProperty({ enum: ['active', 'overdue', 'suspended', 'released'] }) status: string;
  @ApiProperty() createdAt: string;

  static of(a: AccountEntity): AccountView {
    return { id: a.id, appId: a.appId, name: a.name, region: a.region, status: a.status, createdAt: a.createdAt.toISOString() };
  }
}

export class KeyView {
  @ApiProperty() secretId: string;
  @ApiProperty({ enum: ['enabled', 'disabled'] }) status: string;
  @ApiProperty() createdAt: string;

  static of(k: Pick<AccessKeyEntity, 'secretId' | 'status' | 'createdAt'>): KeyView {
    return { secretId: k.secretId, status: k.status, createdAt: k.createdAt.toISOString() };
  }
}

export class CreatedKeyView extends KeyView {
  @ApiProperty({ description: 'shown once; store it now' }) secretKey: string;
}

/** `?search=&cursor=&limit=` of the account listing. */
export class AccountSearchQuery extends CursorPageQuery {
  @ApiPropertyOptional({ description: 'part of the name (ignoring case), or the exact id or appId', example: 'acme' })
  @IsOptional()
  @IsString({ message: 'search must be given once' })
  @MaxLength(128, { message: 'search must be at most 128 characters' })
  search?: string;
}

export class AccountPage {
  @ApiProperty({ type: [AccountView] }) accounts: AccountView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor: string | null;
}
