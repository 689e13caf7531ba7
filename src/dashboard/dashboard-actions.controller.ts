import { Body, Get, HttpCode, Injectable, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { BulkPreview, BulkResult } from './dashboard-api.interface.js';
import { DashboardCrossSiteGuard } from './dashboard-cross-site.guard.js';
import { JsonApi } from './dashboard-headers.js';
import { DashboardOperator, type ActionOutcome } from './dashboard.operator.js';
import { operatorOf, type DashboardRequest } from './dashboard-request.context.js';
import {
  parseBulkAction,
  parseBulkBody,
  parseBulkPreviewQuery,
  parseCancelBody,
  parseEmptyBody,
  parseForkBody,
  parseRunId,
  parseSignalBody,
  parseSkipBody,
} from './dashboard-request.parser.js';

type Query = Record<string, unknown>;

/**
 * The operator actions, under `<path>/api`. Not mounted at all with `readOnly`. Every POST passes the
 * {@link DashboardCrossSiteGuard} (after the configured guard), and records `request.user` as the operator.
 */
@Injectable()
export class DashboardActionsController {
  constructor(private readonly operator: DashboardOperator) {}

  /** `{ compensate?: boolean }` (default true). */
  @Post('api/runs/:runId/cancel')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  cancel(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    return this.operator.cancel(id, parseCancelBody(body).compensate, operatorOf(request));
  }

  @Post('api/runs/:runId/pause')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  pause(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    parseEmptyBody(body, 'pause');
    return this.operator.pause(id, operatorOf(request));
  }

  @Post('api/runs/:runId/resume')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  resume(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    parseEmptyBody(body, 'resume');
    return this.operator.resume(id, operatorOf(request));
  }

  @Post('api/runs/:runId/retry')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  retry(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    parseEmptyBody(body, 'retry');
    return this.operator.retry(id, operatorOf(request));
  }

  /** `{ name, payload? }` (payload: any JSON value). */
  @Post('api/runs/:runId/signal')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  signal(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    const { name, payload } = parseSignalBody(body);
    return this.operator.signal(id, name, payload, operatorOf(request));
  }

  /** `{ output }`: a run failed at a step records that step completed with `output` and goes on. */
  @Post('api/runs/:runId/skip')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  skip(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<ActionOutcome> {
    const id = parseRunId(runId);
    return this.operator.skip(id, parseSkipBody(body).output, operatorOf(request));
  }

  /** `{ fromStep, id?, input? }`: answers `{ runId }` of the new run. */
  @Post('api/runs/:runId/fork')
  @HttpCode(201)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  fork(@Param('runId') runId: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<{ runId: string }> {
    const id = parseRunId(runId);
    return this.operator.fork(id, parseForkBody(body), operatorOf(request));
  }

  /** `GET api/bulk/cancel|retry?<runs filter>`: how many runs the bulk action would touch. */
  @Get('api/bulk/:action')
  @JsonApi()
  preview(@Param('action') action: string, @Query() query: Query): Promise<BulkPreview> {
    return this.operator.preview(parseBulkAction(action), parseBulkPreviewQuery(query));
  }

  /** `{ filter, confirmCount, compensate? }`: cancels or retries the matching runs (409 when more match than confirmed). */
  @Post('api/bulk/:action')
  @HttpCode(200)
  @UseGuards(DashboardCrossSiteGuard)
  @JsonApi()
  bulk(@Param('action') action: string, @Body() body: unknown, @Req() request: DashboardRequest): Promise<BulkResult> {
    const kind = parseBulkAction(action);
    const { filter, confirmCount, compensate } = parseBulkBody(body, kind);
    return this.operator.bulk(kind, filter, confirmCount, compensate, operatorOf(request));
  }
}
