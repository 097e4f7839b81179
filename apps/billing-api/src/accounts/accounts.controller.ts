import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AccountsException, AccountsExceptionCode, AccountsService } from '@app/accounts';
import { AccountView, CreateAccountDto, CreatedKeyView, KeyView } from './accounts.dto';
import { Roles } from '../auth/roles';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import type { AuditActor } from '@app/audit';

const SECRET_ID = /^AKID[A-Za-z0-9]{1,60}$/;

/** A SecretId that could never have been issued is simply not found. */
function secretIdParam(secretId: string): string {
  if (!SECRET_ID.test(secretId)) {
    throw new AccountsException(AccountsExceptionCode.KEY_NOT_FOUND, `key ${secretId.slice(0, 64)} does not exist`);
  }
  return secretId;
}

@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Post()
  @ApiOperatorHeader()
  async create(@OperatorActor() by: AuditActor, @Body() dto: CreateAccountDto): Promise<AccountView> {
    return AccountView.of(await this.accounts.createAccount(dto.name, dto.region, by));
  }

  @Get(':id')
  async get(@Param('id', new ParseUUIDPipe()) id: string): Promise<AccountView> {
    return AccountView.of(await this.accounts.getAccount(id));
  }

  @Post(':id/keys')
  @ApiOperatorHeader()
  async createKey(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string): Promise<CreatedKeyView> {
    const k = await this.accounts.createKey(id, by);
    return { ...KeyView.of(k), secretKey: k.secretKey };
  }

  @Get(':id/keys')
  async listKeys(@Param('id', new ParseUUIDPipe()) id: string): Promise<KeyView[]> {
    return (await this.accounts.listKeys(id)).map((k) => KeyView.of(k));
  }

  @Roles('ops')
  @Post(':id/keys/:secretId/disable')
  @HttpCode(200)
  @ApiOperatorHeader()
  async disable(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<KeyView> {
    return KeyView.of(await this.accounts.setKeyStatus(id, secretIdParam(secretId), 'disabled', by));
  }

  @Roles('ops')
  @Post(':id/keys/:secretId/enable')
  @HttpCode(200)
  @ApiOperatorHeader()
  async enable(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<KeyView> {
    return KeyView.of(await this.accounts.setKeyStatus(id, secretIdParam(secretId), 'enabled', by));
  }

  @Delete(':id/keys/:secretId')
  @HttpCode(204)
  @ApiOperatorHeader()
  async remove(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<void> {
    await this.accounts.deleteKey(id, secretIdParam(secretId), by);
  }
}
