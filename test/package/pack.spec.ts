import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testRedis } from '../setup/test-servers.js';
import { nest11CommonJsApp, nest12EsmApp, writeApp } from './nest-apps.js';

const root = resolve(import.meta.dirname, '../..');
const redis = testRedis();
const INSTALL_TIMEOUT = 600_000;
const RUN_TIMEOUT = 180_000;
/** Shared by both apps and kept between runs, so that a second install (and a rerun) reads from disk. */
const NPM_CACHE = join(tmpdir(), 'cairn-npm-cache');

/**
 * `npm pack` gives a tarball that a fresh Nest app installs and uses from the root import alone, from ESM and from
 * CommonJS. Offline first: an app that links the repo's own copies of Nest and the package's dependencies. Then, from
 * the registry (set CAIRN_SKIP_NETWORK=1 to skip that part offline), a plain `npm install` of the tarball into a Nest 11
 * CommonJS app with TypeORM 0.3 and into a Nest 12 ES module app with TypeORM 1.x, each type-checked with its own
 * TypeScript and running its Jest specs (see nest-apps.ts). The tarball is packed once, for both parts.
 */
describe('npm pack', () => {
  let app: string;
  let tarball: string;

  beforeAll(() => {
    app = mkdtempSync(join(tmpdir(), 'cairn-pack-'));
    const out = execFileSync('npm', ['pack', '--pack-destination', app, '--silent'], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
    tarball = join(app, out);
    const modules = join(app, 'node_modules');
    mkdirSync(join(modules, '@nestjs'), { recursive: true });
    mkdirSync(join(modules, 'nestjs-cairn'));
    execFileSync('tar', ['-xzf', join(app, out), '-C', join(modules, 'nestjs-cairn'), '--strip-components=1']);
    for (const dep of ['reflect-metadata', 'rxjs', 'ms', 'superjson', 'copy-anything', 'is-what', 'tslib', 'uid', 'iterare', 'load-esm', 'file-type', 'fast-safe-stringify', 'path-to-regexp', 'ioredis', 'croner']) {
      try {
        symlinkSync(join(root, 'node_modules', dep), join(modules, dep));
      } catch {
        // optional transitive dependency not present in this tree
      }
    }
    for (const pkg of ['common', 'core']) symlinkSync(join(root, 'node_modules/@nestjs', pkg), join(modules, '@nestjs', pkg));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true }));
  }, 120_000);

  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('ships only the build output', () => {
    const files = readdirSync(join(app, 'node_modules/nestjs-cairn'));
    expect(files.sort()).toEqual(['README.md', 'dist', 'package.json'].sort());
    expect(readdirSync(join(app, 'node_modules/nestjs-cairn/dist'))).toContain('index.d.ts');
    // the Redis store's Lua scripts, read at runtime next to its module
    expect(readdirSync(join(app, 'node_modules/nestjs-cairn/dist/store/redis/lua')).sort()).toEqual(
      readdirSync(join(root, 'src/store/redis/lua')).sort(),
    );
  });

  const program = (imp: string, options = '{}') => `
${imp}
class Greet {
  hello(input) { return 'hello ' + input; }
  shout(prev) { return prev.toUpperCase(); }
}
Workflow('greet')(Greet);
Step()(Greet.prototype, 'hello', Object.getOwnPropertyDescriptor(Greet.prototype, 'hello'));
Step()(Greet.prototype, 'shout', Object.getOwnPropertyDescriptor(Greet.prototype, 'shout'));
class AppModule {}
Module({ imports: [DurableExecutionModule.forRoot(${options})], providers: [Greet] })(AppModule);
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const out = await app.get(WorkflowClient).execute('greet', 'world');
  await app.close();
  console.log('OUTPUT ' + out + ' ' + typeof WorkflowFailedError);
})();
`;

  it('works from an ES module app', () => {
    writeFileSync(
      join(app, 'main.mjs'),
      program(`import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, Workflow, Step, WorkflowClient, WorkflowFailedError } from 'nestjs-cairn';`),
    );
    const out = execFileSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' });
    expect(out).toContain('OUTPUT HELLO WORLD function');
  });

  it('works from a CommonJS app through require()', () => {
    writeFileSync(
      join(app, 'main.cjs'),
      program(`require('reflect-metadata');
const { Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { DurableExecutionModule, Workflow, Step, WorkflowClient, WorkflowFailedError } = require('nestjs-cairn');`),
    );
    const out = execFileSync(process.execPath, ['main.cjs'], { cwd: app, encoding: 'utf8' });
    expect(out).toContain('OUTPUT HELLO WORLD function');
  });

  redis.describe('with the Redis store', () => {
    const options = () => JSON.stringify({ store: { type: 'redis', url: redis.url, keyPrefix: `cairn-pack-${process.pid}:` } });

    it('runs a workflow from an ES module app (the scripts load from dist)', () => {
      writeFileSync(
        join(app, 'redis.mjs'),
        program(
          `import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, Workflow, Step, WorkflowClient, WorkflowFailedError } from 'nestjs-cairn';`,
          options(),
        ),
      );
      const out = execFileSync(process.execPath, ['redis.mjs'], { cwd: app, encoding: 'utf8' });
      expect(out).toContain('OUTPUT HELLO WORLD function');
    });

    it('runs a workflow from a CommonJS app through require()', () => {
      writeFileSync(
        join(app, 'redis.cjs'),
        program(
          `require('reflect-metadata');
const { Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { DurableExecutionModule, Workflow, Step, WorkflowClient, WorkflowFailedError } = require('nestjs-cairn');`,
          options(),
        ),
      );
      const out = execFileSync(process.execPath, ['redis.cjs'], { cwd: app, encoding: 'utf8' });
      expect(out).toContain('OUTPUT HELLO WORLD function');
    });
  });

  (process.env.CAIRN_SKIP_NETWORK === '1' ? describe.skip : describe)('installed from the registry into fresh Nest apps', () => {
    const apps = { nest11: '', nest12: '' };
    const installs: Partial<Record<keyof typeof apps, Promise<string>>> = {};

    beforeAll(() => {
      apps.nest11 = mkdtempSync(join(tmpdir(), 'cairn-nest11-'));
      apps.nest12 = mkdtempSync(join(tmpdir(), 'cairn-nest12-'));
      writeApp(apps.nest11, nest11CommonJsApp(tarball));
      writeApp(apps.nest12, nest12EsmApp(tarball));
      // Both at once (one shared cache): each app's tests wait for their own.
      for (const name of ['nest11', 'nest12'] as const) {
        installs[name] = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], apps[name], INSTALL_TIMEOUT);
        installs[name]!.catch(() => undefined);
      }
    });

    afterAll(() => {
      for (const dir of Object.values(apps)) if (dir) rmSync(dir, { recursive: true, force: true });
    });

    // the apps' specs that need a server skip without one (CAIRN_SKIP_POSTGRES / CAIRN_SKIP_REDIS)
    const appSpecs = 2 + (process.env.DATABASE_URL ? 1 : 0) + (process.env.REDIS_URL ? 1 : 0);
    const version = (dir: string, pkg: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

    /** `npm ls` problems that involve the package (an unmet or invalid peer of it, a missing dependency). */
    const problems = async (dir: string) => {
      const out = await run('npm', ['ls', '--all', '--json'], dir, 60_000, true);
      return ((JSON.parse(out) as { problems?: string[] }).problems ?? []).filter((p) => p.includes('nestjs-cairn'));
    };

    describe('Nest 11, CommonJS, TypeORM 0.3', () => {
      it('installs with a plain npm install (no peer conflicts)', async () => {
        await installs.nest11;
        expect(version(apps.nest11, '@nestjs/core')).toMatch(/^11\./);
        expect(version(apps.nest11, 'typeorm')).toMatch(/^0\.3\./);
        expect(version(apps.nest11, 'typescript')).toMatch(/^5\./);
        expect(await problems(apps.nest11)).toEqual([]);
      }, INSTALL_TIMEOUT);

      it('type-checks with the app TypeScript 5 (typed handles, TypeORM 0.3 types, the expected errors)', async () => {
        await installs.nest11;
        await run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], apps.nest11, RUN_TIMEOUT);
      }, RUN_TIMEOUT);

      it("runs its specs with the Nest CLI's Jest setup (memory, testing module, Postgres on TypeORM 0.3, Redis)", async () => {
        await installs.nest11;
        const out = await run(process.execPath, ['node_modules/jest/bin/jest.js', '--ci'], apps.nest11, RUN_TIMEOUT);
        expect(out).toMatch(new RegExp(`Tests:\\s+(\\d+ skipped, )?${appSpecs} passed, 4 total`));
      }, RUN_TIMEOUT);

      it("runs its e2e spec with the Nest CLI's test/jest-e2e.json", async () => {
        await installs.nest11;
        const out = await run(process.execPath, ['node_modules/jest/bin/jest.js', '--ci', '--config', './test/jest-e2e.json'], apps.nest11, RUN_TIMEOUT);
        expect(out).toContain('Tests:       1 passed, 1 total');
      }, RUN_TIMEOUT);
    });

    describe('Nest 12, ES module, TypeORM 1.x', () => {
      it('installs with a plain npm install (no peer conflicts)', async () => {
        await installs.nest12;
        expect(version(apps.nest12, '@nestjs/core')).toMatch(/^12\./);
        expect(version(apps.nest12, 'typeorm')).toMatch(/^1\./);
        expect(await problems(apps.nest12)).toEqual([]);
      }, INSTALL_TIMEOUT);

      it('type-checks with the app TypeScript (typed handles, TypeORM 1.x types, the expected errors)', async () => {
        await installs.nest12;
        await run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], apps.nest12, RUN_TIMEOUT);
      }, RUN_TIMEOUT);

      it('runs its specs with Jest in ESM mode (memory, testing module, Postgres on TypeORM 1.x, Redis)', async () => {
        await installs.nest12;
        const out = await run(process.execPath, ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--ci'], apps.nest12, RUN_TIMEOUT);
        expect(out).toMatch(new RegExp(`Tests:\\s+(\\d+ skipped, )?${appSpecs} passed, 4 total`));
      }, RUN_TIMEOUT);
    });
  });
});


/**
 * The environment of the apps' commands: the test servers' URLs pass through; npm's own `npm_*` variables (set when
 * `npm test` runs this file, e.g. `npm_config_legacy_peer_deps` or the repo's prefix) do not, except how to reach the
 * registry, so that the install is a plain one.
 */
function appEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|userconfig)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if ((/^npm_/i.test(key) && !keep.test(key)) || key === 'JEST_WORKER_ID') continue;
    env[key] = value;
  }
  return { ...env, npm_config_cache: NPM_CACHE, npm_config_update_notifier: 'false', CI: 'true' };
}

/** Runs a command in `cwd`; resolves its output, or rejects with it. `anyExit`: resolve stdout whatever the exit code. */
function run(command: string, args: string[], cwd: string, timeout: number, anyExit = false): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { cwd, env: appEnv(), timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && !anyExit) {
        reject(new Error(`\`${[command, ...args].join(' ')}\` failed in ${cwd} (${error.message.split('\n')[0]}):\n${stdout}\n${stderr}`.slice(-20_000)));
      } else {
        resolvePromise(anyExit ? stdout : `${stdout}\n${stderr}`);
      }
    });
  });
}
