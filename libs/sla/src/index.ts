export * from './policy';
export * from './month';
export * from './evaluate';
export * from './clock';
export * from './sla.module';
