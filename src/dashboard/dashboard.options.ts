import { ConfigurationError } from '../errors/errors.js';
import type { DurableExecutionDashboardOptions } from './dashboard-options.interface.js';
import { DEFAULT_DASHBOARD_PATH } from './dashboard.constants.js';
import * as messages from './dashboard.messages.js';

/** The options after validation: what the controllers and views read. */
export interface ResolvedDashboardOptions {
  /** `/workflows`, `/admin/runs` or `/`: a leading slash, no trailing one. */
  path: string;
  guard?: DurableExecutionDashboardOptions['guard'];
  readOnly: boolean;
  allowUnauthenticated: boolean;
  redact?: DurableExecutionDashboardOptions['redact'];
}

const PATH_SEGMENT = /^[A-Za-z0-9._~-]+$/;

/**
 * Checks the options' shapes (when `forRoot` is called: the controllers' routes come from them).
 * @throws ConfigurationError naming the option and the fix
 */
export function resolveDashboardOptions(options: DurableExecutionDashboardOptions = {}): ResolvedDashboardOptions {
  if (options === null || typeof options !== 'object') throw new ConfigurationError(messages.INVALID_OPTION('options must be an object'));
  const raw = options.path ?? DEFAULT_DASHBOARD_PATH;
  if (typeof raw !== 'string') throw new ConfigurationError(messages.INVALID_OPTION(`path must be a string such as '/workflows' (got ${typeof raw})`));
  const segments = raw.split('/').filter((s) => s.length > 0);
  for (const segment of segments) {
    if (!PATH_SEGMENT.test(segment) || segment === '.' || segment === '..') {
      throw new ConfigurationError(
        messages.INVALID_OPTION(`path ${JSON.stringify(raw)} has the segment ${JSON.stringify(segment)}; use letters, digits, '.', '_', '~' and '-' between slashes`),
      );
    }
  }
  if (options.guard !== undefined && typeof options.guard !== 'function') {
    throw new ConfigurationError(messages.INVALID_OPTION('guard must be a guard class (a CanActivate provider), e.g. guard: AdminGuard'));
  }
  if (options.redact !== undefined && typeof options.redact !== 'function') {
    throw new ConfigurationError(messages.INVALID_OPTION('redact must be a function (value, { runId, workflow, field }) => shown value'));
  }
  for (const flag of ['readOnly', 'allowUnauthenticated'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw new ConfigurationError(messages.INVALID_OPTION(`${flag} must be a boolean`));
    }
  }
  return {
    path: `/${segments.join('/')}`,
    guard: options.guard,
    readOnly: options.readOnly === true,
    allowUnauthenticated: options.allowUnauthenticated === true,
    redact: options.redact,
  };
}

/**
 * Refuses an unguarded dashboard in production (checked at bootstrap, when the environment is final).
 * @throws ConfigurationError
 */
export function assertMountAllowed(options: ResolvedDashboardOptions, env: Record<string, string | undefined> = process.env): void {
  if (env.NODE_ENV === 'production' && options.guard === undefined && !options.allowUnauthenticated) {
    throw new ConfigurationError(messages.UNGUARDED_IN_PRODUCTION(options.path));
  }
}
