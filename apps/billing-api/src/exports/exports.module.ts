import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { JobQueue } from '@app/common';
import { ExportsController } from './exports.controller';

/** Finance CSV exports: the downloads and the export jobs (produced here, run by the worker). */
@Module({
  imports: [BullModule.registerQueue({ name: JobQueue.Exports })],
  controllers: [ExportsController],
})
export class ExportsApiModule {}
