import { Module } from '@nestjs/common';
import { LongPoll } from './long-poll';
import { MessageStore } from './message-store';
import { QueueRegistry } from './queue-registry';
import { QueueService } from './queue.service';

@Module({
  providers: [QueueRegistry, QueueService, MessageStore, LongPoll],
  exports: [QueueRegistry, QueueService, MessageStore, LongPoll],
})
export class QueuesModule {}
