import { Module } from '@nestjs/common';
import { LedgerService } from './ledger.service';
import { PlanCatalog } from './plan-catalog';

@Module({
  providers: [LedgerService, PlanCatalog],
  exports: [LedgerService, PlanCatalog],
})
export class BillingModule {}
