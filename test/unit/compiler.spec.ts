import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { RetryPolicy, Step, Workflow, WorkflowDefinitionError } from '../../src/index.js';
import { compileWorkflow } from '../../src/definition/workflow.compiler.js';
import { WorkflowRegistry } from '../../src/definition/workflow.registry.js';

const compile = (type: Function) => compileWorkflow(type, Object.create(type.prototype as object) as object);

describe('compileWorkflow', () => {
  it('compiles steps in declaration order with resolved options', () => {
    @Workflow({ name: 'orders', version: 3 })
    class Orders {
      @Step({ retry: RetryPolicy.fixed(3, '1s'), timeout: '5s', compensate: 'undoReserve' })
      reserve() {}
      undoReserve() {}
      @Step({ name: 'pay' })
      charge() {}
      @Step()
      ship() {}
    }
    const def = compile(Orders);
    expect(def.name).toBe('orders');
    expect(def.version).toBe(3);
    expect(def.steps.map((s) => [s.name, s.methodName, s.index])).toEqual([
      ['reserve', 'reserve', 0],
      ['pay', 'charge', 1],
      ['ship', 'ship', 2],
    ]);
    expect(def.steps[0]).toMatchObject({ timeoutMs: 5000, compensate: 'undoReserve' });
    expect(def.steps[0].retry).toMatchObject({ maxAttempts: 3, delayMs: 1000 });
    expect(def.stepsByName.get('pay')?.methodName).toBe('charge');
  });

  it('defaults the name to the class name and the version to 1', () => {
    @Workflow()
    class Plain {
      @Step() one() {}
    }
    expect(compile(Plain)).toMatchObject({ name: 'Plain', version: 1, className: 'Plain' });
  });

  it('includes steps of a base class first', () => {
    class Base {
      @Step() base() {}
    }
    @Workflow()
    class Child extends Base {
      @Step() child() {}
    }
    expect(compile(Child).steps.map((s) => s.name)).toEqual(['base', 'child']);
  });

  const cases: [string, () => Function, RegExp][] = [
    ['no steps', () => { @Workflow() class Empty {} return Empty; }, /Workflow class "Empty" has no steps\. Decorate at least one method with @Step\(\)/],
    ['duplicate step names', () => { @Workflow() class Dup { @Step({ name: 'x' }) a() {} @Step({ name: 'x' }) b() {} } return Dup; }, /"Dup" has two steps named "x" \(methods "a" and "b"\)/],
    ['a missing compensation', () => { @Workflow() class C { @Step({ compensate: 'nope' }) a() {} } return C; }, /C\.a\(\) names compensate: "nope", but C has no method "nope"/],
    ['maxAttempts 0', () => { @Workflow() class R { @Step({ retry: { maxAttempts: 0 } }) a() {} } return R; }, /@Step on R\.a\(\): retry\.maxAttempts must be an integer >= 1/],
    ['maxDelay < delay', () => { @Workflow() class R2 { @Step({ retry: { maxAttempts: 2, delay: '2s', maxDelay: '1s' } }) a() {} } return R2; }, /R2\.a\(\): retry\.maxDelay \(1000 ms\) cannot be less than retry\.delay/],
    ['an unparsable timeout', () => { @Workflow() class T { @Step({ timeout: 'soon' }) a() {} } return T; }, /T\.a\(\): timeout must be a positive number of ms or a duration string/],
    ['a zero timeout', () => { @Workflow() class T0 { @Step({ timeout: 0 }) a() {} } return T0; }, /T0\.a\(\): timeout/],
    ['a bad version', () => { @Workflow({ version: 0 }) class V { @Step() a() {} } return V; }, /@Workflow on class "V": version must be an integer >= 1/],
  ];
  it.each(cases)('rejects %s with WorkflowDefinitionError naming class and method', (_name, make, message) => {
    const type = make();
    expect(() => compile(type)).toThrow(WorkflowDefinitionError);
    expect(() => compile(type)).toThrow(message);
  });

  it('rejects two workflows with one name in the registry', () => {
    @Workflow('same') class A { @Step() a() {} }
    @Workflow('same') class B { @Step() b() {} }
    const registry = new WorkflowRegistry();
    registry.register(compile(A));
    expect(() => registry.register(compile(B))).toThrow(/Two workflows are named "same" with version 1 \(classes "A" and "B"\)/);
    expect(() => registry.resolve(A)).toThrow(/call `await app.init\(\)`/);
    registry.markReady();
    expect(registry.resolve(A).name).toBe('same');
    expect(() => registry.resolve('other')).toThrow(/Unknown workflow "other"\. Registered workflows: "same"/);
  });
});
