import { DynamicModule, Module, Type } from '@nestjs/common';
import { LongPoll } from './long-poll';
import { QpsThrottle } from './qps-throttle';
import { COMMIT_OBSERVER, COMMIT_OUTBOX, MessageStore } from './message-store';
import { QueueRegistry } from './queue-registry';
import { QueueService } from './queue.service';
import { TopicRegistry } from './topic-registry';
import { TopicService } from './topic.service';

const PROVIDERS = [QueueRegistry, QueueService, MessageStore, LongPoll, QpsThrottle, TopicRegistry, TopicService];

export interface QueuesModuleOptions {
  /** an outbox whose entries commit with the message writes (the usage outbox), and what it needs */
  outbox?: { provider: Type; imports?: DynamicModule[] };
  /** what hears of every group commit (a CommitObserver: metrics) */
  commitObserver?: Type;
}

@Module({})
export class QueuesModule {
  static forRoot(options: QueuesModuleOptions = {}): DynamicModule {
    const outbox = options.outbox;
    return {
      module: QueuesModule,
      imports: outbox?.imports ?? [],
      providers: [
        ...PROVIDERS,
        ...(outbox ? [outbox.provider, { provide: COMMIT_OUTBOX, useExisting: outbox.provider }] : []),
        ...(options.commitObserver ? [options.commitObserver, { provide: COMMIT_OBSERVER, useExisting: options.commitObserver }] : []),
      ],
      exports: PROVIDERS,
    };
  }
}
