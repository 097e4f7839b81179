export * from './redis.service';
export * from './redis.health';
export * from './health.controller';
export * from './logging';
export * from './common.module';
export * from './bootstrap';
export * from './job-queues';
export * from './wait-for-http';
