import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Put,
  Query,
} from '@nestjs/common';
import { AccountAccess } from '../auth/roles';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { IsOptional, IsString, IsUrl, Matches, MaxLength, ValidateIf } from 'class-validator';
import { AccountsService } from '@app/accounts';
import { LedgerService, Notification, NOTIFICATION_KINDS, NotificationStore, parseAmount, Webhook } from '@app/billing';
import { CursorPageQuery } from '../pagination';
import { decodeCursor, pageOf } from '../cursor';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import type { AuditActor } from '@app/audit';
import { AMOUNT, AMOUNT_MESSAGE, BalanceView } from '../ledger/ledger.controller';
import { ApiAccountIdParam } from '../openapi';

export class SetWebhookDto {
  @ApiProperty({ example: 'https://example.com/cmq/notifications', description: 'http(s) URL the notifications are POSTed to' })
  @IsString()
  @MaxLength(2000)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false }, { message: 'url must be an http or https URL' })
  url: string;

  @ApiProperty({
    example: 'whsec-4f1c0a9e7b2d4c6f',
    description: 'HMAC-SHA256 key of X-Cmq-Signature, 16-256 printable ASCII characters; stored encrypted, never shown again',
  })
  @IsString()
  @Matches(/^[\x20-\x7e]{16,256}$/, { message: 'secret must be 16-256 printable ASCII characters' })
  secret: string;
}

export class WebhookView {
  @ApiProperty() accountId: string;
  @ApiProperty() url: string;
  @ApiProperty() updatedAt: string;

  static of(accountId: string, w: Webhook): WebhookView {
    return { accountId, url: w.url, updatedAt: w.updatedAt.toISOString() };
  }
}

export class SetAlertThresholdDto {
  @ApiProperty({
    type: 'string',
    nullable: true,
    example: '50.00',
    description: 'alert when cash plus vouchers fall below this (decimal string, more than 0); null: no alerts',
  })
  @ValidateIf((o: SetAlertThresholdDto) => o.amount !== null)
  @IsString()
  @Matches(AMOUNT, { message: AMOUNT_MESSAGE })
  amount: string | null;
}

export class NotificationView {
  @ApiProperty() id: string;
  @ApiProperty({ enum: NOTIFICATION_KINDS }) kind: string;
  @ApiProperty({ description: 'what the webhook body carries as data: status, cash, vouchers, currency, and per kind more' })
  payload: Record<string, unknown>;
  @ApiProperty() createdAt: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'failed', 'no_webhook'] }) delivery: string;
  @ApiProperty({ type: 'string', nullable: true }) deliveredAt: string | null;
  @ApiProperty({ description: 'webhook requests made' }) attempts: number;
  @ApiProperty({ type: 'string', nullable: true }) lastError: string | null;

  static of(n: Notification): NotificationView {
    return {
      id: n.id,
      kind: n.kind,
      payload: n.payload,
      createdAt: n.createdAt.toISOString(),
      delivery: n.delivery,
      deliveredAt: n.deliveredAt?.toISOString() ?? null,
      attempts: n.attempts,
      lastError: n.lastError,
    };
  }
}

export class NotificationPage {
  @ApiProperty({ type: [NotificationView], description: 'newest first' }) notifications: NotificationView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as cursor= for the next page; null on the last' }) nextCursor: string | null;
}

/**
 * The arrears ladder's settings and record (billing.md §5): where an account's notifications
 * go, the low-balance threshold, and the notifications themselves.
 */
@ApiTags('billing')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id')
export class ArrearsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly ledger: LedgerService,
    private readonly notifications: NotificationStore,
  ) {}

  /** Sets the webhook; notifications from now on (and those still pending) go to it. */
  @Put('webhook')
  @ApiOperatorHeader()
  @ApiOkResponse({ type: WebhookView, description: 'The webhook as set (never its secret).' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async setWebhook(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string, @Body() dto: SetWebhookDto): Promise<WebhookView> {
    await this.accounts.getAccount(id);
    return WebhookView.of(id, await this.notifications.setWebhook(id, dto.url, dto.secret, by));
  }

  @Get('webhook')
  @ApiOkResponse({ type: WebhookView, description: 'The webhook (never its secret).' })
  @ApiNotFoundResponse({ description: 'No such account, or it has no webhook.' })
  async webhook(@Param('id', new ParseUUIDPipe()) id: string): Promise<WebhookView> {
    await this.accounts.getAccount(id);
    const w = await this.notifications.webhook(id);
    if (!w) throw new NotFoundException(`account ${id} has no webhook`);
    return WebhookView.of(id, w);
  }

  /** Notifications are still stored, and listed, without one. */
  @Delete('webhook')
  @HttpCode(204)
  @ApiOperatorHeader()
  @ApiNoContentResponse({ description: 'The webhook is removed.' })
  @ApiNotFoundResponse({ description: 'No such account, or it has no webhook.' })
  async removeWebhook(@OperatorActor() by: AuditActor, @Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    await this.accounts.getAccount(id);
    if (!(await this.notifications.removeWebhook(id, by))) throw new NotFoundException(`account ${id} has no webhook`);
  }

  /** Armed at once: the next posting that leaves the funds below it alerts. */
  @AccountAccess()
  @Put('alert-threshold')
  @ApiOperatorHeader()
  @ApiOkResponse({ type: BalanceView, description: 'The balance, with the threshold as set.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async setAlertThreshold(
    @OperatorActor() by: AuditActor,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: SetAlertThresholdDto,
  ): Promise<BalanceView> {
    await this.accounts.getAccount(id);
    const amount = dto.amount === null ? null : parseAmount(dto.amount);
    if (amount !== null && amount <= 0n) throw new BadRequestException('amount must be more than 0 (null turns the alert off)');
    return BalanceView.of(await this.ledger.setAlertThreshold(id, amount, by));
  }

  @AccountAccess()
  @Get('notifications')
  @ApiOkResponse({ type: NotificationPage, description: 'A page of the notifications, newest first.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async list(@Param('id', new ParseUUIDPipe()) id: string, @Query() q: CursorPageQuery): Promise<NotificationPage> {
    await this.accounts.getAccount(id);
    const limit = q.limit ?? 20;
    const key = decodeCursor('notifications', q.cursor, 1, ([nid]) => typeof nid === 'string' && /^[1-9]\d{0,18}$/.test(nid));
    const rows = await this.notifications.list(id, limit + 1, key ? String(key[0]) : undefined);
    const { items, nextCursor } = pageOf(rows, limit, 'notifications', (n) => [n.id]);
    return { notifications: items.map((n) => NotificationView.of(n)), nextCursor };
  }
}
