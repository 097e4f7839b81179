import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DataSourceOptions } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/config';
import { dataSourceOptions } from './data-source';
import { PgPool, PgRelaxedPool } from './pg-pool';

@Global()
@Module({})
export class DbModule {
  static forRoot(entities: NonNullable<DataSourceOptions['entities']>): DynamicModule {
    return {
      module: DbModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => dataSourceOptions(config, entities),
        }),
      ],
      providers: [PgPool, PgRelaxedPool],
      exports: [PgPool, PgRelaxedPool, TypeOrmModule],
    };
  }
}
