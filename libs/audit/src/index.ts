export * from './chain';
export * from './audit-trail';
export * from './audit.module';
export * from './context';
