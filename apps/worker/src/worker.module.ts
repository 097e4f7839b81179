import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { bullConnection, Clock, ClockModule, CommonModule, JobQueue, loggerParams, MetricsModule } from '@app/common';
import { MessageSweeper } from '@app/queues';
import { BillingModule } from '@app/billing';
import { ACCOUNT_ENTITIES } from '@app/accounts';
import { SlaModule } from '@app/sla';
import { MaintenanceProcessor } from './maintenance/maintenance.processor';
import { MaintenanceScheduler } from './maintenance/maintenance.scheduler';
import { UsageProcessor, UsageResender } from './usage/usage.processor';
import { NotificationProcessor } from './notifications/notification.processor';
import { SlaProcessor } from './sla/sla.processor';
import { SlaScheduler } from './sla/sla.scheduler';
import { ExportsWorkerModule } from './exports/exports-worker.module';
import { PushDeliverer } from './push/push-deliverer';
import { PushProcessor } from './push/push.processor';
import { WorkerMetrics, WorkerStateMetrics } from './metrics/worker-metrics';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig, clock?: Clock): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot(config),
        ClockModule.forRoot(clock),
        LoggerModule.forRoot(loggerParams(config, 'worker')),
        DbModule.forRoot(ACCOUNT_ENTITIES),
        CommonModule,
        MetricsModule.forRoot('worker'),
        ScheduleModule.forRoot(),
        BullModule.forRoot({ connection: bullConnection(config.redis.url), prefix: `${config.redis.prefix}:bull` }),
        BullModule.registerQueue({ name: JobQueue.Maintenance }, { name: JobQueue.Usage }, { name: JobQueue.Sla }, { name: JobQueue.Push }),
        BillingModule,
        SlaModule,
        ExportsWorkerModule,
      ],
      providers: [MessageSweeper, MaintenanceProcessor, MaintenanceScheduler, UsageProcessor, UsageResender, NotificationProcessor, SlaScheduler, SlaProcessor, PushDeliverer, PushProcessor, WorkerMetrics, WorkerStateMetrics],
    };
  }
}
