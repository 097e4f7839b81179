import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { JobQueue } from '@app/common';
import { ArrearsService } from './arrears.service';
import { BillClose } from './bills';
import { LedgerService } from './ledger.service';
import { NotificationDispatcher, NotificationStore, WebhookDeliverer } from './notifications';
import { PlanCatalog } from './plan-catalog';
import { PricePlans } from './price-plans';
import { UsageApplier } from './usage-applier';
import { UsageReports } from './usage-report';

/** Needs BullModule.forRoot in the app: postings queue the notifications they store. */
@Module({
  imports: [BullModule.registerQueue({ name: JobQueue.Notifications })],
  providers: [LedgerService, PlanCatalog, UsageApplier, NotificationStore, NotificationDispatcher, WebhookDeliverer, ArrearsService, BillClose, PricePlans, UsageReports],
  exports: [LedgerService, PlanCatalog, UsageApplier, NotificationStore, NotificationDispatcher, WebhookDeliverer, ArrearsService, BillClose, PricePlans, UsageReports, BullModule],
})
export class BillingModule {}
