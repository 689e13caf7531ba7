import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { SampleAppConfig } from './app.config.js';
import { AppModule } from './app.module.js';

export { loadConfig, describeStore, defaultStateFile, type SampleAppConfig } from './app.config.js';

/**
 * Builds the order service (Express) for a configuration, initialised but not listening: `main.ts` calls `listen()`,
 * tests hand `getHttpServer()` to supertest. Shutdown hooks are on: SIGINT/SIGTERM drain in-flight steps first.
 */
export async function createApp(config: SampleAppConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    logger: config.logger === false ? false : undefined,
    abortOnError: false,
  });
  app.enableShutdownHooks();
  await app.init();
  return app;
}
