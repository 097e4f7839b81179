import { Controller, Get, Inject, Param, ParseUUIDPipe, Query } from '@nestjs/common';
import { AccountAccess } from '../auth/roles';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { AccountsService } from '@app/accounts';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { AuditTrail } from '@app/audit';
import { AuditPage, auditPage } from '../audit/audit.views';
import { CursorPageQuery } from '../pagination';
import { ApiAccountIdParam } from '../openapi';

export class DataStoreView {
  @ApiProperty({ example: 'gz' }) region: string;
  @ApiProperty({ type: 'string', example: 'Guangzhou, China (data center GZ-3)', nullable: true, description: 'null: the operator has not configured it' })
  location: string | null;
  @ApiProperty({ description: 'what of the account this region holds' }) holds: string[];
  @ApiProperty() liveQueues: number;
  @ApiProperty() messages: number;
  @ApiProperty() liveTopics: number;
  @ApiProperty({ description: 'topic messages held until they are pushed to HTTP subscribers' }) pendingPushes: number;
}

export class DataRightsView {
  @ApiProperty() accountId: string;
  @ApiProperty({ description: 'the account’s home region: its account, key, usage and billing records are kept there' }) homeRegion: string;
  @ApiProperty({ type: [DataStoreView] }) stores: DataStoreView[];
  @ApiProperty({ description: 'live copies of every record (the database and its synchronous replicas)' }) replicas: number;
  @ApiProperty({ description: 'backup copies retained' }) backupCopies: number;
  @ApiProperty({ description: 'days backups are kept' }) backupRetentionDays: number;
  @ApiProperty({ description: 'replicas + backup copies' }) copies: number;
}

/**
 * The account's data rights: where its data is stored (each region's location, from
 * DATA_LOCATIONS) and how many copies exist (DATA_REPLICAS, DATA_BACKUP_COPIES), and the audit
 * records of what was done to its resources.
 */
@ApiTags('accounts')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id')
export class DataRightsController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly accounts: AccountsService,
    private readonly pool: PgPool,
    private readonly trail: AuditTrail,
  ) {}

  @AccountAccess()
  @Get('data-rights')
  @ApiOkResponse({ type: DataRightsView, description: 'Where the account’s data is stored and how many copies exist.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async dataRights(@Param('id', new ParseUUIDPipe()) id: string): Promise<DataRightsView> {
    const account = await this.accounts.getAccount(id);
    const { rows } = await this.pool.query<{ region: string; queues: number; messages: string; topics: number; pushes: string }>(
      `WITH q AS (
         SELECT q.region, count(*)::int AS queues,
                coalesce(sum((SELECT sum(c.msgs) FROM queue_counters c WHERE c.queue_id = q.id)), 0) AS messages
           FROM queues q WHERE q.account_id = $1 AND q.deleted_at IS NULL GROUP BY q.region
       ), t AS (
         SELECT t.region, count(*)::int AS topics,
                coalesce(sum((SELECT count(*) FROM push_deliveries d JOIN subscriptions s ON s.id = d.subscription_id
                               WHERE s.topic_id = t.id)), 0) AS pushes
           FROM topics t WHERE t.account_id = $1 AND t.deleted_at IS NULL GROUP BY t.region
       )
       SELECT coalesce(q.region, t.region) AS region, coalesce(q.queues, 0) AS queues, coalesce(q.messages, 0)::text AS messages,
              coalesce(t.topics, 0) AS topics, coalesce(t.pushes, 0)::text AS pushes
         FROM q FULL JOIN t ON t.region = q.region ORDER BY 1`,
      [id],
    );
    const byRegion = new Map(rows.map((r) => [r.region, r]));
    const regions = [...new Set([account.region, ...rows.map((r) => r.region)])].sort();
    const { locations, replicas, backupCopies, backupRetentionDays } = this.config.dataResidency;
    return {
      accountId: id,
      homeRegion: account.region,
      stores: regions.map((region) => ({
        region,
        location: locations[region] ?? null,
        holds: [
          ...(region === account.region ? ['account and access keys', 'usage, ledger and bills', 'SLA results', 'audit records'] : []),
          ...(byRegion.get(region)?.queues ? ['queues and their messages'] : []),
          ...(byRegion.get(region)?.topics ? ['topics, subscriptions and messages not yet pushed'] : []),
        ],
        liveQueues: byRegion.get(region)?.queues ?? 0,
        messages: Number(byRegion.get(region)?.messages ?? 0),
        liveTopics: byRegion.get(region)?.topics ?? 0,
        pendingPushes: Number(byRegion.get(region)?.pushes ?? 0),
      })),
      replicas,
      backupCopies,
      backupRetentionDays,
      copies: replicas + backupCopies,
    };
  }

  /** The account's own audit records: what was done to its resources, by whom and through what. */
  @AccountAccess()
  @Get('audit-records')
  @ApiOkResponse({ type: AuditPage, description: 'A page of the account’s own audit entries, newest first.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async auditRecords(@Param('id', new ParseUUIDPipe()) id: string, @Query() q: CursorPageQuery): Promise<AuditPage> {
    await this.accounts.getAccount(id);
    return auditPage(this.trail, { ...q, accountId: id });
  }
}
