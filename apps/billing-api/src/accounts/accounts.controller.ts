import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { AccountsException, AccountsExceptionCode, AccountsService } from '@app/accounts';
import { AccountPage, AccountSearchQuery, AccountView, CreateAccountDto, CreatedKeyView, KeyView } from './accounts.dto';
import { decodeCursor, pageOf } from '../cursor';
import { AccountAccess, Roles } from '../auth/roles';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import type { AuditActor } from '@app/audit';
import { ApiAccountIdParam } from '../openapi';

const SECRET_ID = /^AKID[A-Za-z0-9]{1,60}$/;

const ApiSecretIdParam = () =>
  ApiParam({ name: 'secretId', description: 'the SecretId of the key (AKID…); one that could never have been issued is not found', example: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA' });
const ApiKeyNotFound = () => ApiNotFoundResponse({ description: 'No such account, or no such key of it.' });

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
  @ApiCreatedResponse({ type: AccountView, description: 'The account, created.' })
  async create(@OperatorActor() by: AuditActor, @Body() dto: CreateAccountDto): Promise<AccountView> {
    return AccountView.of(await this.accounts.createAccount(dto.name, dto.region, by));
  }

  @Get()
  @ApiOkResponse({ type: AccountPage, description: 'Accounts by creation, the oldest first, in cursor pages; system accounts are not listed.' })
  async search(@Query() q: AccountSearchQuery): Promise<AccountPage> {
    const limit = q.limit ?? 20;
    const key = decodeCursor('accounts', q.cursor, 1, ([id]) => typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id));
    const rows = await this.accounts.searchAccounts(q.search, key ? String(key[0]) : undefined, limit + 1);
    const { items, nextCursor } = pageOf(rows, limit, 'accounts', (a) => [a.id]);
    return { accounts: items.map(AccountView.of), nextCursor };
  }

  @AccountAccess()
  @Get(':id')
  @ApiAccountIdParam()
  @ApiOkResponse({ type: AccountView, description: 'The account.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async get(@Param('id', new ParseUUIDPipe()) id: string): Promise<AccountView> {
    return AccountView.of(await this.accounts.getAccount(id));
  }

  @AccountAccess()
  @Post(':id/keys')
  @ApiOperatorHeader()
  @ApiAccountIdParam()
  @ApiCreatedResponse({ type: CreatedKeyView, description: 'The key, with its SecretKey: shown only here.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async createKey(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string): Promise<CreatedKeyView> {
    const k = await this.accounts.createKey(id, by);
    return { ...KeyView.of(k), secretKey: k.secretKey };
  }

  @AccountAccess()
  @Get(':id/keys')
  @ApiAccountIdParam()
  @ApiOkResponse({ type: [KeyView], description: 'The keys of the account, oldest first, without their secrets.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async listKeys(@Param('id', new ParseUUIDPipe()) id: string): Promise<KeyView[]> {
    return (await this.accounts.listKeys(id)).map((k) => KeyView.of(k));
  }

  @Roles('ops')
  @AccountAccess()
  @Post(':id/keys/:secretId/disable')
  @HttpCode(200)
  @ApiOperatorHeader()
  @ApiAccountIdParam()
  @ApiSecretIdParam()
  @ApiOkResponse({ type: KeyView, description: 'The key, disabled: every queue-api process refuses it at once.' })
  @ApiKeyNotFound()
  async disable(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<KeyView> {
    return KeyView.of(await this.accounts.setKeyStatus(id, secretIdParam(secretId), 'disabled', by));
  }

  @Roles('ops')
  @AccountAccess()
  @Post(':id/keys/:secretId/enable')
  @HttpCode(200)
  @ApiOperatorHeader()
  @ApiAccountIdParam()
  @ApiSecretIdParam()
  @ApiOkResponse({ type: KeyView, description: 'The key, enabled.' })
  @ApiKeyNotFound()
  async enable(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<KeyView> {
    return KeyView.of(await this.accounts.setKeyStatus(id, secretIdParam(secretId), 'enabled', by));
  }

  @AccountAccess()
  @Delete(':id/keys/:secretId')
  @HttpCode(204)
  @ApiOperatorHeader()
  @ApiAccountIdParam()
  @ApiSecretIdParam()
  @ApiNoContentResponse({ description: 'The key is deleted.' })
  @ApiKeyNotFound()
  async remove(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Param('secretId') secretId: string): Promise<void> {
    await this.accounts.deleteKey(id, secretIdParam(secretId), by);
  }
}
