import { Module } from '@nestjs/common';
import { AccountsModule } from '@app/accounts';
import { BillingModule } from '@app/billing';
import { QueuesModule } from '@app/queues';
import { MonthClose } from './month-close';
import { SlaSignals } from './signals';
import { SlaReports } from './reports';
import { BurnRateAlerts } from './burn-rate';
import { SlaPolicies } from './policies';
import { SlaOperations } from './operations';
import { ProbeAccount } from './probe-account';
import { SlaProber } from './prober';

/**
 * SLA accounting: signals, month evaluation and close, credits, reports. Needs BullModule.forRoot
 * and ClockModule.forRoot in the app, and the account entities in its DbModule (the prober's system account).
 */
@Module({
  imports: [BillingModule, AccountsModule, QueuesModule.forRoot()],
  providers: [SlaPolicies, SlaSignals, MonthClose, SlaReports, BurnRateAlerts, SlaOperations, ProbeAccount, SlaProber],
  exports: [SlaPolicies, SlaSignals, MonthClose, SlaReports, BurnRateAlerts, SlaOperations, ProbeAccount, SlaProber],
})
export class SlaModule {}
