import { Module } from '@nestjs/common';
import { LongPoll } from './long-poll';
import { QpsThrottle } from './qps-throttle';
import { MessageStore } from './message-store';
import { QueueRegistry } from './queue-registry';
import { QueueService } from './queue.service';

@Module({
  providers: [QueueRegistry, QueueService, MessageStore, LongPoll, QpsThrottle],
  exports: [QueueRegistry, QueueService, MessageStore, LongPoll, QpsThrottle],
})
export class QueuesModule {}
