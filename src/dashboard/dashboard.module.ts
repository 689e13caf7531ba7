import { Controller, Module, UseFilters, UseGuards, type CanActivate, type DynamicModule, type Type } from '@nestjs/common';
import type { DurableExecutionDashboardOptions } from './dashboard-options.interface.js';
import { DashboardActionsController } from './dashboard-actions.controller.js';
import { DashboardApiController } from './dashboard-api.controller.js';
import { DashboardLiveEvents } from './dashboard-live.service.js';
import { DashboardOperator } from './dashboard.operator.js';
import { DashboardPagesController } from './dashboard-pages.controller.js';
import { DashboardReader } from './dashboard.reader.js';
import { DASHBOARD_OPTIONS } from './dashboard.constants.js';
import { DashboardApiExceptionFilter, DashboardPageExceptionFilter } from './dashboard.exception-filter.js';
import { assertMountAllowed, resolveDashboardOptions, type ResolvedDashboardOptions } from './dashboard.options.js';

/**
 * A controller class mounted at the dashboard's path: a subclass of `base` per `forRoot`, so that the path and the
 * guard come from the options (routes, guards and filters are read from the class, and each call gets its own).
 */
function mount(base: Type, options: ResolvedDashboardOptions, filter: Type): Type {
  const mounted = { [base.name]: class extends base {} }[base.name];
  Controller(options.path)(mounted);
  if (options.guard) UseGuards(options.guard as Type<CanActivate>)(mounted);
  UseFilters(filter)(mounted);
  return mounted;
}

/**
 * A web UI of the runs, served by the app itself (pages, a JSON API under `<path>/api`, live updates over server-sent
 * events), with operator actions. Import it next to `DurableExecutionModule.forRoot()` (which must stay global):
 *
 * ```ts
 * DurableExecutionDashboardModule.forRoot({ path: '/workflows', guard: AdminGuard })
 * ```
 *
 * With `NODE_ENV=production`, bootstrap fails with ConfigurationError when there is no `guard` (unless
 * `allowUnauthenticated: true`). `readOnly: true` mounts no action route at all.
 */
@Module({})
export class DurableExecutionDashboardModule {
  /**
   * NOTE: hand-written rather than generated with ConfigurableModuleBuilder: the path and the guard decide which
   * controller classes exist, which must be known when the module is defined (an async factory comes too late).
   * @throws ConfigurationError for malformed options (at once) or an unguarded production mount (at bootstrap)
   */
  static forRoot(options: DurableExecutionDashboardOptions = {}): DynamicModule {
    const resolved = resolveDashboardOptions(options);
    const controllers = [mount(DashboardPagesController, resolved, DashboardPageExceptionFilter), mount(DashboardApiController, resolved, DashboardApiExceptionFilter)];
    if (!resolved.readOnly) controllers.push(mount(DashboardActionsController, resolved, DashboardApiExceptionFilter));
    return {
      module: DurableExecutionDashboardModule,
      controllers,
      providers: [
        {
          provide: DASHBOARD_OPTIONS,
          useFactory: () => {
            assertMountAllowed(resolved);
            return resolved;
          },
        },
        DashboardReader,
        DashboardOperator,
        DashboardLiveEvents,
      ],
    };
  }
}
