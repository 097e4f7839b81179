import { Module } from '@nestjs/common';
import { LedgerService } from './ledger.service';
import { PlanCatalog } from './plan-catalog';
import { UsageApplier } from './usage-applier';

@Module({
  providers: [LedgerService, PlanCatalog, UsageApplier],
  exports: [LedgerService, PlanCatalog, UsageApplier],
})
export class BillingModule {}
