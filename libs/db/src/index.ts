export * from './data-source';
export * from './bootstrap-db';
export * from './pg-pool';
export * from './db.module';
