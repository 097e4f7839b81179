export * from './queue.types';
export * from './queue-registry';
export * from './queue.service';
export * from './message-store';
export * from './long-poll';
export * from './group-commit';
export * from './message-sweeper';
export * from './queues.module';
