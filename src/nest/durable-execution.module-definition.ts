import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DurableExecutionOptions } from './durable-execution-options.interface.js';

export const {
  ConfigurableModuleClass: DurableExecutionConfigurableModule,
  MODULE_OPTIONS_TOKEN: DURABLE_EXECUTION_OPTIONS,
  OPTIONS_TYPE: DURABLE_EXECUTION_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DURABLE_EXECUTION_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DurableExecutionOptions>({ moduleName: 'DurableExecution' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
