import { Get, Inject, Injectable, NotFoundException, Param, Query, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ASSETS } from './assets/dashboard-assets.js';
import { DashboardLiveEvents } from './dashboard-live.service.js';
import { HtmlPage } from './dashboard-headers.js';
import { DashboardPageFailure } from './dashboard.exception-filter.js';
import { pageContext } from './dashboard-page.context.js';
import { DashboardReader } from './dashboard.reader.js';
import { parseNoQuery, parseRunId, parseRunsQuery, parseValueRef } from './dashboard-request.parser.js';
import type { DashboardRequest } from './dashboard-request.context.js';
import { DASHBOARD_OPTIONS } from './dashboard.constants.js';
import type { ResolvedDashboardOptions } from './dashboard.options.js';
import type { PageContext } from './views/layout.view.js';
import { runPage } from './views/run.view.js';
import { runsPage } from './views/runs.view.js';
import { valuePage } from './views/value-page.view.js';
import { workflowsPage } from './views/workflows.view.js';

type Query = Record<string, unknown>;

/**
 * The pages (server-rendered HTML) and their two files. The module mounts a subclass at the configured path, behind
 * the configured guard (see `DurableExecutionDashboardModule.forRoot`).
 */
@Injectable()
export class DashboardPagesController {
  constructor(
    private readonly reader: DashboardReader,
    private readonly live: DashboardLiveEvents,
    @Inject(DASHBOARD_OPTIONS) private readonly options: ResolvedDashboardOptions,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Get()
  @HtmlPage()
  runs(@Req() request: DashboardRequest, @Res({ passthrough: true }) response: unknown, @Query() query: Query): Promise<string> {
    return this.render(request, response, 0, async (ctx) => {
      const filter = parseRunsQuery(query);
      const page = await this.reader.runs(filter);
      return runsPage(ctx, filter, page, [...new Set(this.reader.definitions().map((d) => d.name))]);
    });
  }

  @Get('workflows')
  @HtmlPage()
  workflows(@Req() request: DashboardRequest, @Res({ passthrough: true }) response: unknown, @Query() query: Query): Promise<string> {
    return this.render(request, response, 1, async (ctx) => {
      parseNoQuery(query);
      return workflowsPage(ctx, await this.reader.workflows());
    });
  }

  @Get('runs/:runId')
  @HtmlPage()
  run(@Req() request: DashboardRequest, @Res({ passthrough: true }) response: unknown, @Param('runId') runId: string, @Query() query: Query): Promise<string> {
    return this.render(request, response, 2, async (ctx) => {
      parseNoQuery(query);
      return runPage(ctx, await this.reader.run(parseRunId(runId)));
    });
  }

  @Get('runs/:runId/value')
  @HtmlPage()
  value(@Req() request: DashboardRequest, @Res({ passthrough: true }) response: unknown, @Param('runId') runId: string, @Query() query: Query): Promise<string> {
    return this.render(request, response, 3, async (ctx) => {
      const shown = await this.reader.value(parseRunId(runId), parseValueRef(query));
      return valuePage(ctx, shown.run, shown.ref, shown.value);
    });
  }

  /** The script and the style sheet; their names carry a hash of their content, so they are cached for good. */
  @Get('assets/:file')
  asset(@Res({ passthrough: true }) response: unknown, @Param('file') file: string): string {
    const asset = ASSETS.get(file);
    if (!asset) throw new NotFoundException('No such dashboard file.');
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'Content-Type', asset.contentType);
    adapter.setHeader(response, 'Cache-Control', 'public, max-age=31536000, immutable');
    adapter.setHeader(response, 'X-Content-Type-Options', 'nosniff');
    return asset.body;
  }

  /** Renders a page; a failure becomes an error page that still links back (see DashboardPageExceptionFilter). */
  private async render(request: DashboardRequest, response: unknown, depth: number, build: (ctx: PageContext) => Promise<string>): Promise<string> {
    const ctx = pageContext(request, response, this.adapterHost.httpAdapter, depth, { readOnly: this.options.readOnly, live: this.live.scope });
    try {
      return await build(ctx);
    } catch (error) {
      throw new DashboardPageFailure(error, ctx);
    }
  }
}
