/**
 * The two apps pack.spec.ts installs the tarball into (not a spec file), written file by file:
 *
 * - a Nest 11 CommonJS app with TypeORM 0.3, whose Jest setup is the one `nest new` (Nest CLI 11,
 *   @nestjs/schematics 11.1.0) generates: the `jest` block of package.json, test/jest-e2e.json and tsconfig.json
 *   verbatim, plus the one line the README documents (`transformIgnorePatterns`);
 * - a Nest 12 ES module app with TypeORM 1.x (the CLI 12's ESM template), tested with Jest in ESM mode (ts-jest's ESM
 *   preset).
 *
 * Each app has one workflow and specs that run it on the memory store, on the Postgres store over the app's own
 * TypeORM DataSource (from @nestjs/typeorm, with `start(…, { transaction })`) and on the Redis store. Their types are
 * checked by the app's own `tsc` (TypeScript 5 in the Nest 11 app, 6 in the Nest 12 app), including typed handles and
 * a `@ts-expect-error` for a wrong input. Dependencies are a subset of the templates' (what the specs need), at the
 * templates' ranges.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The `transformIgnorePatterns` line the README documents for Jest in a CommonJS Nest app. */
export const TRANSFORM_IGNORE_PATTERNS = ['/node_modules/(?!(nestjs-cairn|superjson|copy-anything|is-what)/)'];

export interface AppFiles {
  [path: string]: string;
}

export function writeApp(dir: string, files: AppFiles): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** A workflow as an app writes it: an injected service, the typed-run marker, a step context; and a module. */
const WORKFLOW = `import { Injectable, Module } from '@nestjs/common';
import { DurableExecutionModule, Step, Workflow, WorkflowTypes, type StepContext } from 'nestjs-cairn';

export interface Order {
  orderId: string;
  amount: number;
}
export interface Receipt {
  orderId: string;
  charged: number;
  at: Date;
}

@Injectable()
export class Payments {
  charge(order: Order) {
    return { chargeId: \`ch_\${order.orderId}\`, amount: order.amount };
  }
}

@Workflow('order')
export class OrderWorkflow {
  declare readonly [WorkflowTypes]?: { input: Order; output: Receipt };

  constructor(private readonly payments: Payments) {}

  @Step()
  charge(order: Order) {
    return this.payments.charge(order);
  }

  @Step()
  receipt(charge: { chargeId: string; amount: number }, ctx: StepContext<Order>): Receipt {
    return { orderId: ctx.input.orderId, charged: charge.amount, at: new Date(0) };
  }
}

@Module({
  imports: [DurableExecutionModule.forRoot({ store: { type: 'memory' } })],
  providers: [OrderWorkflow, Payments],
})
export class AppModule {}
`;

/**
 * The specs of an app. `ext`: the relative import suffix ('' in CommonJS, '.js' in ESM); `typeorm`: the major the
 * app runs.
 */
const specs = (ext: string, typeorm: string): AppFiles => ({
  'src/orders.spec.ts': `import { Test } from '@nestjs/testing';
import { DurableExecutionModule, WorkflowClient } from 'nestjs-cairn';
import { OrderWorkflow, Payments, type Receipt } from './orders.workflow${ext}';

describe('orders on the memory store', () => {
  it('runs a workflow with typed input and output', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DurableExecutionModule.forRoot({ store: { type: 'memory' } })],
      providers: [OrderWorkflow, Payments],
    }).compile();
    await moduleRef.init();
    const client = moduleRef.get(WorkflowClient);
    const receipt: Receipt = await client.execute(OrderWorkflow, { orderId: 'o1', amount: 5 });
    expect(receipt).toEqual({ orderId: 'o1', charged: 5, at: new Date(0) });
    await moduleRef.close();
  });
});

// Never called: compiled by the app's tsc only.
export async function typeErrors(client: WorkflowClient): Promise<void> {
  // @ts-expect-error the input is an Order
  await client.start(OrderWorkflow, 42);
  // @ts-expect-error not an EntityManager
  await client.start(OrderWorkflow, { orderId: 'o', amount: 1 }, { transaction: 'oops' });
  // @ts-expect-error not a TypeORM DataSource
  DurableExecutionModule.forRoot({ store: { type: 'postgres', dataSource: 'not a datasource' } });
}
`,
  'src/orders-testing.spec.ts': `import { Test } from '@nestjs/testing';
import { DurableExecutionTestingModule, Flow, Step, Workflow, WorkflowClient, WorkflowTestClock } from 'nestjs-cairn';
import { Payments } from './orders.workflow${ext}';

@Workflow('approval')
class ApprovalWorkflow {
  constructor(private readonly payments: Payments) {}
  @Step()
  ask(orderId: string) {
    return Flow.waitForSignal('approved', { timeout: '24h', value: orderId });
  }
  @Step()
  charge(approved: { by: string }) {
    return { by: approved.by, charge: this.payments.charge({ orderId: 'o', amount: 1 }).chargeId };
  }
}

describe('the testing module and its clock', () => {
  it('tests a 24-hour timeout in milliseconds, with a provider override', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DurableExecutionTestingModule.forRoot()],
      providers: [ApprovalWorkflow, Payments],
    })
      .overrideProvider(Payments)
      .useValue({ charge: () => ({ chargeId: 'fake', amount: 1 }) })
      .compile();
    await moduleRef.init();
    const client = moduleRef.get(WorkflowClient);
    const clock = moduleRef.get(WorkflowTestClock);
    const approved = await client.start(ApprovalWorkflow, 'o-1');
    const ignored = await client.start(ApprovalWorkflow, 'o-2');
    await clock.runUntilIdle();
    await client.signal(approved.runId, 'approved', { by: 'ann' });
    await clock.advance('24h');
    expect(await approved.result()).toEqual({ by: 'ann', charge: 'fake' });
    await expect(ignored.result()).rejects.toMatchObject({ cause: { name: 'SignalTimeoutError' } });
    await moduleRef.close();
  });
});
`,
  'src/orders-postgres.spec.ts': `import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DurableExecutionModule, WorkflowClient } from 'nestjs-cairn';
import { OrderWorkflow, Payments } from './orders.workflow${ext}';

const url = process.env.DATABASE_URL;
const schema = \`cairn_app_\${process.pid}\`;

(url ? describe : describe.skip)('orders on the postgres store, on the app TypeORM ${typeorm} DataSource', () => {
  it('runs a workflow, and starts one inside the caller transaction', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url }),
        DurableExecutionModule.forRootAsync({
          inject: [DataSource],
          useFactory: (dataSource: DataSource) => ({ store: { type: 'postgres', dataSource, schema } }),
        }),
      ],
      providers: [OrderWorkflow, Payments],
    }).compile();
    await moduleRef.init();
    const dataSource = moduleRef.get<DataSource>(getDataSourceToken());
    try {
      expect(String(dataSource.options.type)).toBe('postgres');
      const client = moduleRef.get(WorkflowClient);
      expect((await client.execute(OrderWorkflow, { orderId: 'o1', amount: 5 }, { timeout: '10s' })).charged).toBe(5);
      await expect(
        dataSource.transaction(async (manager) => {
          await client.start(OrderWorkflow, { orderId: 'o2', amount: 6 }, { id: 'rolled-back', transaction: manager });
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect(await client.describe('rolled-back')).toBeUndefined();
      const handle = await dataSource.transaction((manager) =>
        client.start(OrderWorkflow, { orderId: 'o3', amount: 7 }, { id: 'committed', transaction: manager }),
      );
      expect((await handle.result({ timeout: '10s' })).charged).toBe(7);
    } finally {
      await dataSource.query(\`DROP SCHEMA IF EXISTS "\${schema}" CASCADE\`);
      await moduleRef.close();
    }
  });
});
`,
  'src/orders-redis.spec.ts': `import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { DurableExecutionModule, WorkflowClient } from 'nestjs-cairn';
import { OrderWorkflow, Payments } from './orders.workflow${ext}';

const url = process.env.REDIS_URL;

(url ? describe : describe.skip)('orders on the redis store (its Lua scripts load from the installed package)', () => {
  it('runs a workflow on the app ioredis client', async () => {
    const client = new Redis(url!);
    const moduleRef = await Test.createTestingModule({
      imports: [DurableExecutionModule.forRoot({ store: { type: 'redis', client, keyPrefix: \`cairn-app-\${process.pid}:\` } })],
      providers: [OrderWorkflow, Payments],
    }).compile();
    await moduleRef.init();
    try {
      expect((await moduleRef.get(WorkflowClient).execute(OrderWorkflow, { orderId: 'o1', amount: 5 }, { timeout: '10s' })).charged).toBe(5);
    } finally {
      await moduleRef.close();
      client.disconnect();
    }
  });
});
`,
});

/** The Nest CLI 11 template's tsconfig.json (`nest new`, not strict), verbatim. */
const NEST11_TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    resolvePackageJsonExports: true,
    esModuleInterop: true,
    isolatedModules: true,
    declaration: true,
    removeComments: true,
    emitDecoratorMetadata: true,
    experimentalDecorators: true,
    allowSyntheticDefaultImports: true,
    target: 'ES2023',
    sourceMap: true,
    outDir: './dist',
    baseUrl: './',
    incremental: true,
    skipLibCheck: true,
    strictNullChecks: true,
    forceConsistentCasingInFileNames: true,
    noImplicitAny: false,
    strictBindCallApply: false,
    noFallthroughCasesInSwitch: false,
  },
};

/** The Nest 11 CommonJS app with TypeORM 0.3. `tarball`: the packed nestjs-cairn. */
export function nest11CommonJsApp(tarball: string): AppFiles {
  return {
    'package.json': json({
      name: 'nest11-cjs-app',
      version: '0.0.1',
      private: true,
      license: 'UNLICENSED',
      scripts: { test: 'jest', 'test:e2e': 'jest --config ./test/jest-e2e.json' },
      dependencies: {
        '@nestjs/common': '^11.0.1',
        '@nestjs/core': '^11.0.1',
        '@nestjs/typeorm': '^11.0.0',
        ioredis: '^5.4.0',
        'nestjs-cairn': `file:${tarball}`,
        pg: '^8.11.0',
        'reflect-metadata': '^0.2.2',
        rxjs: '^7.8.1',
        typeorm: '^0.3.20',
      },
      devDependencies: {
        '@nestjs/testing': '^11.0.1',
        '@types/jest': '^30.0.0',
        '@types/node': '^24.0.0',
        jest: '^30.0.0',
        'ts-jest': '^29.2.5',
        typescript: '^5.7.3',
      },
      // The CLI's block, verbatim, plus the documented line.
      jest: {
        moduleFileExtensions: ['js', 'json', 'ts'],
        rootDir: 'src',
        testRegex: '.*\\.spec\\.ts$',
        transform: { '^.+\\.(t|j)s$': 'ts-jest' },
        collectCoverageFrom: ['**/*.(t|j)s'],
        coverageDirectory: '../coverage',
        testEnvironment: 'node',
        transformIgnorePatterns: TRANSFORM_IGNORE_PATTERNS,
      },
    }),
    'tsconfig.json': json(NEST11_TSCONFIG),
    'tsconfig.build.json': json({ extends: './tsconfig.json', exclude: ['node_modules', 'test', 'dist', '**/*spec.ts'] }),
    // The CLI's file, verbatim, plus the documented line.
    'test/jest-e2e.json': json({
      moduleFileExtensions: ['js', 'json', 'ts'],
      rootDir: '.',
      testEnvironment: 'node',
      testRegex: '.e2e-spec.ts$',
      transform: { '^.+\\.(t|j)s$': 'ts-jest' },
      transformIgnorePatterns: TRANSFORM_IGNORE_PATTERNS,
    }),
    'test/app.e2e-spec.ts': `import { Test, TestingModule } from '@nestjs/testing';
import { WorkflowClient } from 'nestjs-cairn';
import { AppModule, OrderWorkflow } from './../src/orders.workflow';

describe('AppModule (e2e)', () => {
  let moduleFixture: TestingModule;

  beforeEach(async () => {
    moduleFixture = await Test.createTestingModule({ imports: [AppModule] }).compile();
    await moduleFixture.init();
  });

  it('runs a workflow', async () => {
    const receipt = await moduleFixture.get(WorkflowClient).execute(OrderWorkflow, { orderId: 'e2e', amount: 3 });
    expect(receipt.orderId).toBe('e2e');
  });

  afterEach(async () => {
    await moduleFixture.close();
  });
});
`,
    'src/orders.workflow.ts': WORKFLOW,
    ...specs('', '0.3'),
  };
}

/** The Nest 12 ES module app with TypeORM 1.x. `tarball`: the packed nestjs-cairn. */
export function nest12EsmApp(tarball: string): AppFiles {
  return {
    'package.json': json({
      name: 'nest12-esm-app',
      version: '0.0.1',
      private: true,
      license: 'UNLICENSED',
      type: 'module',
      scripts: { test: 'node --experimental-vm-modules ./node_modules/jest/bin/jest.js' },
      dependencies: {
        '@nestjs/common': '^12.0.1',
        '@nestjs/core': '^12.0.1',
        '@nestjs/typeorm': '^12.0.0',
        // NOTE: ioredis 5: TypeORM 1.x declares an optional peer ioredis ^5, so a plain install refuses ioredis 6 next to it.
        ioredis: '^5.4.0',
        'nestjs-cairn': `file:${tarball}`,
        pg: '^8.11.0',
        'reflect-metadata': '^0.2.2',
        rxjs: '^7.8.1',
        typeorm: '^1.0.0',
      },
      devDependencies: {
        '@nestjs/testing': '^12.0.1',
        '@types/jest': '^30.0.0',
        '@types/node': '^24.0.0',
        jest: '^30.0.0',
        'ts-jest': '^29.4.0',
        typescript: '^6.0.2',
      },
    }),
    // The CLI 12 ESM template's tsconfig.json (not strict), with Jest's types instead of Vitest's.
    'tsconfig.json': json({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        resolvePackageJsonExports: true,
        esModuleInterop: true,
        isolatedModules: true,
        declaration: true,
        removeComments: true,
        emitDecoratorMetadata: true,
        experimentalDecorators: true,
        allowSyntheticDefaultImports: true,
        target: 'ES2023',
        sourceMap: true,
        outDir: './dist',
        rootDir: '.',
        incremental: true,
        skipLibCheck: true,
        strict: false,
        strictPropertyInitialization: false,
        types: ['node', 'jest'],
      },
    }),
    'jest.config.js': `import { createDefaultEsmPreset } from 'ts-jest';

/** @type {import('jest').Config} */
export default {
  ...createDefaultEsmPreset(),
  moduleNameMapper: { '^(\\\\.{1,2}/.*)\\\\.js$': '$1' },
  moduleFileExtensions: ['js', 'json', 'ts'],
  rootDir: '.',
  testRegex: '.*\\\\.spec\\\\.ts$',
  testEnvironment: 'node',
};
`,
    'src/orders.workflow.ts': WORKFLOW,
    ...specs('.js', '1.x'),
  };
}
