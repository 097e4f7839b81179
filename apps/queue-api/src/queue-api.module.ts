import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig, ConfigModule } from '@app/config';
import { DbModule } from '@app/db';
import { BullModule } from '@nestjs/bullmq';
import { bullConnection, Clock, ClockModule, CommonModule, JobQueue, loggerParams, MetricsModule } from '@app/common';
import { ACCOUNT_ENTITIES, AccountsModule } from '@app/accounts';
import { QueuesModule } from '@app/queues';
import { AccountStandingModule, UsageOutbox } from '@app/billing';
import { Authenticator } from './cmq/authenticator';
import { ReplayGuard } from './cmq/replay-guard';
import { CmqGateway } from './cmq/cmq.gateway';
import { QueueActions } from './cmq/queue.actions';
import { TopicActions } from './cmq/topic.actions';
import { PushRelay } from './cmq/push-relay';
import { CmqMetrics, GroupCommitMetrics } from './cmq/cmq-metrics';

@Module({})
export class QueueApiModule {
  static forRoot(config: AppConfig, clock?: Clock): DynamicModule {
    return {
      module: QueueApiModule,
      imports: [
        ConfigModule.forRoot(config),
        ClockModule.forRoot(clock),
        LoggerModule.forRoot(loggerParams(config, 'queue-api', [])),
        DbModule.forRoot(ACCOUNT_ENTITIES),
        CommonModule,
        MetricsModule.forRoot('queue-api'),
        AccountsModule,
        BullModule.forRoot({ connection: bullConnection(config.redis.url), prefix: `${config.redis.prefix}:bull` }),
        QueuesModule.forRoot({
          ...(config.usage.metering ? { outbox: { provider: UsageOutbox, imports: [BullModule.registerQueue({ name: JobQueue.Usage })] } } : {}),
          commitObserver: GroupCommitMetrics,
        }),
        BullModule.registerQueue({ name: JobQueue.Push }),
        AccountStandingModule,
      ],
      providers: [Authenticator, ReplayGuard, QueueActions, TopicActions, PushRelay, CmqMetrics, CmqGateway],
    };
  }
}
