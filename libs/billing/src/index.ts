export * from './money';
export * from './metering';
export * from './rating';
export * from './ledger.service';
export * from './plan-catalog';
export * from './billing.module';
export * from './usage-applier';
