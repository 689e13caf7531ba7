/**
 * What users see in their editor, through the TypeScript language service: the type tests of
 * typed-client.types.ts compile (every `@ts-expect-error` there is an error, every expectation holds), and completion
 * inside `store: { type: 'postgres', … }` offers only that store's options, not the methods of a custom store.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '../..');
const typesFile = join(root, 'test/types/typed-client.types.ts');
const virtualFile = join(root, 'test/types/__completion__.ts');

let service: ts.LanguageService;
let virtualText = '';

function options(): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath));
  return { ...parsed.options, noEmit: true };
}

/** Completion entry names at the `|` of `source` (the marker is removed). */
function completionsAt(source: string): string[] {
  const at = source.indexOf('|');
  virtualText = source.slice(0, at) + source.slice(at + 1);
  const info = service.getCompletionsAtPosition(virtualFile, at, {});
  return (info?.entries ?? []).map((e) => e.name);
}

const STORE_METHODS = ['claimRun', 'claimRuns', 'commit', 'createRun', 'init', 'close'];

describe('types as the editor sees them', () => {
  beforeAll(() => {
    const compilerOptions = options();
    let version = 0;
    const host: ts.LanguageServiceHost = {
      getCompilationSettings: () => compilerOptions,
      getScriptFileNames: () => [typesFile, virtualFile],
      getScriptVersion: (file) => (file === virtualFile ? String(++version) : '1'),
      getScriptSnapshot: (file) => {
        if (file === virtualFile) return ts.ScriptSnapshot.fromString(virtualText);
        if (!ts.sys.fileExists(file)) return undefined;
        return ts.ScriptSnapshot.fromString(readFileSync(file, 'utf8'));
      },
      getCurrentDirectory: () => root,
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      fileExists: (file) => file === virtualFile || ts.sys.fileExists(file),
      readFile: (file) => (file === virtualFile ? virtualText : ts.sys.readFile(file)),
      readDirectory: ts.sys.readDirectory,
      directoryExists: ts.sys.directoryExists,
      getDirectories: ts.sys.getDirectories,
    };
    service = ts.createLanguageService(host, ts.createDocumentRegistry());
  });

  it('compiles the type tests: wrong uses are errors, inferred types are exact', () => {
    const diagnostics = [...service.getSyntacticDiagnostics(typesFile), ...service.getSemanticDiagnostics(typesFile)];
    const text = diagnostics.map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start!);
      return `line ${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(text).toEqual([]);
    // NOTE: the file must hold checks at all (a broken import would leave nothing to fail).
    expect(readFileSync(typesFile, 'utf8').match(/@ts-expect-error/g)?.length).toBeGreaterThan(20);
  }, 60_000);

  const prelude = `import { DurableExecutionModule } from '../../src/index.js';\n`;

  it.each([
    ['postgres', ['url', 'dataSource', 'schema', 'tablePrefix']],
    ['redis', ['url', 'client', 'keyPrefix', 'ttl', 'childRecheckMs']],
    ['pglite', ['dataDir']],
  ])("completes store { type: '%s', … } with its options only", (type, expected) => {
    const names = completionsAt(`${prelude}DurableExecutionModule.forRoot({ store: { type: '${type}', | } });\n`);
    expect(names.sort()).toEqual([...expected].sort());
  }, 60_000);

  it('completes the store types inside type: \'…\'', () => {
    const names = completionsAt(`${prelude}DurableExecutionModule.forRoot({ store: { type: '|' } });\n`);
    expect(names.sort()).toEqual(['memory', 'pglite', 'postgres', 'redis']);
  });

  it('completes store options in forRootAsync factories too', () => {
    const names = completionsAt(
      `${prelude}DurableExecutionModule.forRootAsync({ useFactory: () => ({ store: { type: 'redis', | } }) });\n`,
    );
    for (const m of STORE_METHODS) expect(names).not.toContain(m);
  });
});
