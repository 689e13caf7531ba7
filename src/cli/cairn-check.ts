#!/usr/bin/env node
/**
 * `cairn-check <module file> [export name] [--json]`: the deploy-time compatibility gate. Loads the app's root module
 * (compiled JavaScript, or TypeScript under a loader), boots it without a worker against the store its configuration
 * names (run it with the production environment: DATABASE_URL, REDIS_URL …), compares the runs in flight with the
 * module's workflow definitions, prints the report and exits 1 when it is not ok (2 on a usage or boot error).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const USAGE = 'usage: cairn-check <path to the compiled module file, e.g. dist/app.module.js> [ExportName (default AppModule)] [--json]';

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const [file, exportName = 'AppModule'] = argv.filter((a) => a !== '--json');
  if (!file || file === '--help' || file === '-h') {
    console.error(USAGE);
    return 2;
  }
  process.env.CAIRN_CHECK_ONLY = '1';
  const loaded = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
  const root = loaded[exportName] ?? (loaded.default as Record<string, unknown> | undefined)?.[exportName];
  if (typeof root !== 'function') {
    console.error(`cairn-check: ${file} exports no module named "${exportName}" (exports: ${Object.keys(loaded).join(', ') || 'none'}).\n${USAGE}`);
    return 2;
  }
  const [{ NestFactory }, { WorkflowClient }, { describeReport }] = await Promise.all([
    import('@nestjs/core'),
    import('../client/workflow-client.js'),
    import('../nest/durable-execution.orchestrator.js'),
  ]);
  const app = await NestFactory.createApplicationContext(root as never, { logger: ['error', 'warn'], abortOnError: false });
  try {
    const report = await app.get(WorkflowClient, { strict: false }).checkCompatibility();
    console.log(json ? JSON.stringify(report, null, 2) : describeReport(report));
    return report.ok ? 0 : 1;
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`cairn-check: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
