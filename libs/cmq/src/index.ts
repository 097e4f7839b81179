export * from './errors';
export * from './form';
export * from './params';
export * from './limits';
export * from './response';
export * from './signature';
export * from './client';
export * from './dead-letter';
