/**
 * The app `cairn-check` loads in test/cli/cairn-check.spec.ts (not a spec): one workflow "order" whose steps depend on
 * CHECK_VARIANT ('today': a, b, c; 'without-b': a, c), on the Postgres store at DATABASE_URL in schema CHECK_SCHEMA.
 */
import { Module } from '@nestjs/common';
import { DurableExecutionModule, Flow, Step, Workflow } from '../../src/index.js';

@Workflow({ name: 'order' })
export class OrderToday {
  @Step() a() {
    return 1;
  }
  @Step() b() {
    return Flow.waitForSignal('go-b');
  }
  @Step() c() {
    return 2;
  }
}

@Workflow({ name: 'order' })
export class OrderWithoutB {
  @Step() a() {
    return 1;
  }
  @Step() c() {
    return 2;
  }
}

@Module({
  imports: [
    DurableExecutionModule.forRoot({
      store: { type: 'postgres', url: process.env.DATABASE_URL, schema: process.env.CHECK_SCHEMA },
      worker: { pollIntervalMs: 50 },
    }),
  ],
  providers: [process.env.CHECK_VARIANT === 'without-b' ? OrderWithoutB : OrderToday],
})
export class AppModule {}
