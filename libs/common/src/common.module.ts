import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { RedisHealthIndicator } from './redis.health';
import { RedisService } from './redis.service';

/** Redis and the health endpoint, shared by every app. */
@Global()
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty', gracefulShutdownTimeoutMs: 0 })],
  controllers: [HealthController],
  providers: [RedisService, RedisHealthIndicator],
  exports: [RedisService, RedisHealthIndicator, TerminusModule],
})
export class CommonModule {}
