export * from './expect-eventually';
export * from './test-stack';
export * from './spawn-app';
export * from './free-port';
export * from './callers';
export * from './queue-api-processes';
export * from './scratch-database';
export * from './csv';
