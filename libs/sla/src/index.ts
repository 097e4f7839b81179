export * from './policy';
export * from './month';
export * from './evaluate';
export * from './clock';
export * from './signals';
export * from './month-close';
export * from './operations';
export * from './sla.module';
