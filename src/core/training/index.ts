export * from './export';
export * from './files';
