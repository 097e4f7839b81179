export * from './policy';
export * from './month';
export * from './evaluate';
