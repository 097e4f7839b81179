export * from './policy';
export * from './month';
export * from './evaluate';
export * from './clock';
export * from './signals';
export * from './month-close';
export * from './sla.module';
