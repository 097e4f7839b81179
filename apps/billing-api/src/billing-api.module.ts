import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { bullConnection, Clock, ClockModule, CommonModule, loggerParams, MetricsModule } from '@app/common';
import { ACCOUNT_ENTITIES, AccountsModule } from '@app/accounts';
import { QueuesModule } from '@app/queues';
import { BillingModule } from '@app/billing';
import { SlaModule } from '@app/sla';
import { AuditModule } from '@app/audit';
import { LedgerController } from './ledger/ledger.controller';
import { LedgerHealthController } from './ledger/ledger-health.controller';
import { UsageEventsController } from './usage/usage-events.controller';
import { AccountsController } from './accounts/accounts.controller';
import { QueueLimitsController } from './queues/queue-limits.controller';
import { AccountPlansController } from './plans/account-plans.controller';
import { ArrearsController } from './arrears/arrears.controller';
import { SlaOpsController } from './sla/sla-ops.controller';
import { SlaReportsController } from './sla/sla-reports.controller';
import { SlaPoliciesController } from './sla/sla-policies.controller';
import { DataRightsController } from './data-rights/data-rights.controller';
import { BillsController } from './bills/bills.controller';
import { ExportsApiModule } from './exports/exports.module';
import { ApiTokenGuard } from './auth/api-token.guard';
import { AuditController } from './audit/audit.controller';
import { UsageReportsController } from './usage/usage-reports.controller';
import { PricePlansController } from './plans/price-plans.controller';
import { ConsoleController } from './console/console.controller';
import { ConsoleSessions } from './console/console-sessions';
import { HttpMetrics } from './http-metrics';

@Module({})
export class BillingApiModule {
  static forRoot(config: AppConfig, clock?: Clock): DynamicModule {
    return {
      module: BillingApiModule,
      imports: [
        ConfigModule.forRoot(config),
        ClockModule.forRoot(clock),
        LoggerModule.forRoot(loggerParams(config, 'billing-api')),
        DbModule.forRoot(ACCOUNT_ENTITIES),
        CommonModule,
        MetricsModule.forRoot('billing-api'),
        // producer only: postings queue the notifications they store
        BullModule.forRoot({ connection: bullConnection(config.redis.url), prefix: `${config.redis.prefix}:bull` }),
        AuditModule,
        AccountsModule,
        QueuesModule.forRoot(),
        BillingModule,
        SlaModule,
        ExportsApiModule,
      ],
      // every route needs a bearer token and a role that may call it, unless marked @Public()
      providers: [ConsoleSessions, HttpMetrics, { provide: APP_GUARD, useClass: ApiTokenGuard }],
      controllers: [
        ConsoleController,
        AccountsController,
        QueueLimitsController,
        LedgerController,
        LedgerHealthController,
        UsageEventsController,
        AccountPlansController,
        ArrearsController,
        SlaOpsController,
        SlaReportsController,
        SlaPoliciesController,
        DataRightsController,
        BillsController,
        AuditController,
        UsageReportsController,
        PricePlansController,
      ],
    };
  }
}
