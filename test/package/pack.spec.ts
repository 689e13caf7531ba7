import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testRedis } from '../setup/test-servers.js';

const root = resolve(import.meta.dirname, '../..');
const redis = testRedis();

/**
 * `npm pack` gives a tarball that a fresh Nest app installs and uses from the root import alone, from ESM and from
 * CommonJS. Offline: the app links the repo's own copies of Nest and the package's dependencies.
 */
describe('npm pack', () => {
  let app: string;

  beforeAll(() => {
    app = mkdtempSync(join(tmpdir(), 'cairn-pack-'));
    const out = execFileSync('npm', ['pack', '--pack-destination', app, '--silent'], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
    const modules = join(app, 'node_modules');
    mkdirSync(join(modules, '@nestjs'), { recursive: true });
    mkdirSync(join(modules, 'nestjs-cairn'));
    execFileSync('tar', ['-xzf', join(app, out), '-C', join(modules, 'nestjs-cairn'), '--strip-components=1']);
    for (const dep of ['reflect-metadata', 'rxjs', 'ms', 'superjson', 'copy-anything', 'is-what', 'tslib', 'uid', 'iterare', 'load-esm', 'file-type', 'fast-safe-stringify', 'path-to-regexp', 'ioredis']) {
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
});
