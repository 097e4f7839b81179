export * from './money';
export * from './metering';
export * from './rating';
