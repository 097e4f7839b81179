import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { ApiExcludeController } from '@nestjs/swagger';
import { LedgerService } from '@app/billing';
import { APP_CONFIG, AppConfig } from '@app/config';
import { Public } from '@app/common';

/**
 * `GET /health/ledger`: the latest scheduled reconciliation of balances against the ledger.
 * Down (503) when it found an account whose balance differs from the sum of its entries, or
 * when no reconciliation ran for three intervals while there are balances to check.
 */
@ApiExcludeController()
@Public()
@Controller('health')
export class LedgerHealthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly ledger: LedgerService,
  ) {}

  @Get('ledger')
  @HealthCheck()
  check() {
    return this.health.check([
      async () => {
        const check = this.indicator.check('ledger');
        const last = await this.ledger.latestReconciliation();
        if (!last) return check.up({ reconciled: 'not yet' });
        const info = { runAt: last.runAt.toISOString(), accountsChecked: last.accountsChecked, mismatched: last.mismatched };
        if (last.mismatched > 0) return check.down({ ...info, accounts: last.details.map((d) => d.accountId) });
        const stale = Date.now() - last.runAt.getTime() > 3 * this.config.billing.reconcileIntervalMs;
        return stale ? check.down({ ...info, reason: 'no reconciliation for three intervals' }) : check.up(info);
      },
    ]);
  }
}
