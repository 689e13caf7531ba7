import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { DurableExecutionError } from './cairn.js';
import { SampleConfigError, describeStore, loadConfig } from './app.config.js';
import { createApp } from './create-app.js';

const logger = new Logger('OrderService');

async function main(): Promise<void> {
  const config = loadConfig();
  logger.log(describeStore(config));
  const app = await createApp(config);
  await app.listen(config.port);
  logger.log(`Listening on http://localhost:${config.port} (pid ${process.pid}; Ctrl-C stops after in-flight steps finish)`);
}

main().catch((error: unknown) => {
  // A wrong setting or a busy data folder is explained by its message; anything else gets its stack.
  const expected = error instanceof SampleConfigError || error instanceof DurableExecutionError;
  logger.error(error instanceof Error ? error.message : String(error), expected || !(error instanceof Error) ? undefined : error.stack);
  process.exit(1);
});
