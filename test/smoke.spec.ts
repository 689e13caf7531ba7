import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, it, expect } from '@jest/globals';

@Injectable()
class Dep { v = 42; }
@Injectable()
class Svc { constructor(readonly dep: Dep) {} }
@Module({ providers: [Dep, Svc] })
class M {}

describe('toolchain', () => {
  it('injects through decorator metadata', async () => {
    const mod = await Test.createTestingModule({ imports: [M] }).compile();
    expect(mod.get(Svc).dep.v).toBe(42);
  });
});
