import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { bullConnection, CommonModule, JobQueue, loggerParams } from '@app/common';
import { MessageSweeper } from '@app/queues';
import { BillingModule } from '@app/billing';
import { MaintenanceProcessor } from './maintenance/maintenance.processor';
import { MaintenanceScheduler } from './maintenance/maintenance.scheduler';
import { UsageProcessor, UsageResender } from './usage/usage.processor';
import { NotificationProcessor } from './notifications/notification.processor';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerParams(config, 'worker')),
        DbModule.forRoot([]),
        CommonModule,
        ScheduleModule.forRoot(),
        BullModule.forRoot({ connection: bullConnection(config.redis.url), prefix: `${config.redis.prefix}:bull` }),
        BullModule.registerQueue({ name: JobQueue.Maintenance }, { name: JobQueue.Usage }),
        BillingModule,
      ],
      providers: [MessageSweeper, MaintenanceProcessor, MaintenanceScheduler, UsageProcessor, UsageResender, NotificationProcessor],
    };
  }
}
