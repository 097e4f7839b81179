export * from './account.entity';
export * from './access-key.entity';
export * from './accounts.exception';
export * from './accounts.service';
export * from './credential-store';
export * from './secret-box';
export * from './accounts.module';
