export * from './expect-eventually';
export * from './test-stack';
export * from './spawn-app';
