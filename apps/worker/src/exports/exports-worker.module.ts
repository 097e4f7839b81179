import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { JobQueue } from '@app/common';
import { ExportProcessor } from './export.processor';

/** Runs finance CSV export jobs (queued by the billing-api) into EXPORT_DIR. */
@Module({
  imports: [BullModule.registerQueue({ name: JobQueue.Exports })],
  providers: [ExportProcessor],
})
export class ExportsWorkerModule {}
