import type { DataSourceOptions } from 'typeorm';
import type { AppConfig } from '@app/config';
import { InitialSchema1764000000000 } from './migrations/1764000000000-initial-schema';
import { QueueCore1764100000000 } from './migrations/1764100000000-queue-core';
import { BillingLedger1764200000000 } from './migrations/1764200000000-billing-ledger';
import { Usage1764300000000 } from './migrations/1764300000000-usage';
import { UsageOutbox1764400000000 } from './migrations/1764400000000-usage-outbox';
import { AccountPlans1764410000000 } from './migrations/1764410000000-account-plans';
import { Arrears1764500000000 } from './migrations/1764500000000-arrears';
import { Sla1764600000000 } from './migrations/1764600000000-sla';
import { SystemAccount1764610000000 } from './migrations/1764610000000-system-account';
import { SlaCloseScale1764620000000 } from './migrations/1764620000000-sla-close-scale';
import { LedgerUsageByTime1764630000000 } from './migrations/1764630000000-ledger-usage-by-time';
import { Bills1764700000000 } from './migrations/1764700000000-bills';
import { ExportJobs1764710000000 } from './migrations/1764710000000-export-jobs';
import { UsageHourlyAmounts1764720000000 } from './migrations/1764720000000-usage-hourly-amounts';
import { AuditTrail1764730000000 } from './migrations/1764730000000-audit-trail';
import { Topics1764800000000 } from './migrations/1764800000000-topics';
import { QueueCountsFunction1764900000000 } from './migrations/1764900000000-queue-counts-function';

/** Every migration, in order. New ones are appended here. */
export const MIGRATIONS = [
  InitialSchema1764000000000,
  QueueCore1764100000000,
  BillingLedger1764200000000,
  Usage1764300000000,
  UsageOutbox1764400000000,
  AccountPlans1764410000000,
  Arrears1764500000000,
  Sla1764600000000,
  SystemAccount1764610000000,
  SlaCloseScale1764620000000,
  LedgerUsageByTime1764630000000,
  Bills1764700000000,
  ExportJobs1764710000000,
  UsageHourlyAmounts1764720000000,
  AuditTrail1764730000000,
  Topics1764800000000,
  QueueCountsFunction1764900000000,
];

/** The one TypeORM options object, shared by the Nest module and the migration runner. */
export function dataSourceOptions(config: AppConfig, entities: DataSourceOptions['entities'] = []): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    entities,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    migrationsRun: false,
    extra: { max: Math.max(4, Math.ceil(config.database.poolSize / 4)), application_name: 'cmq-typeorm' },
  };
}
