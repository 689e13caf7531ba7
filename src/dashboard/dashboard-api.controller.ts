import { Get, Inject, Injectable, Param, Query, Req, Res, Sse, type MessageEvent } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Socket } from 'node:net';
import type { Observable } from 'rxjs';
import type { RunStatus } from '../store/workflow-store.interface.js';
import type { HistoryEventView, RunDetail, RunsPage, ShownValue, WorkflowView } from './dashboard-api.interface.js';
import { JsonApi } from './dashboard-headers.js';
import { DashboardLiveEvents } from './dashboard-live.service.js';
import { DashboardReader } from './dashboard.reader.js';
import { csrfCookie, csrfSetCookie, newCsrfToken, type DashboardRequest } from './dashboard-request.context.js';
import {
  parseCountsQuery,
  parseEventsQuery,
  parseHistoryQuery,
  parseNoQuery,
  parseRunId,
  parseRunsQuery,
  parseValueRef,
} from './dashboard-request.parser.js';

type Query = Record<string, unknown>;

/** The read-only JSON API (and the live stream) behind the pages, under `<path>/api`. */
@Injectable()
export class DashboardApiController {
  constructor(
    private readonly reader: DashboardReader,
    private readonly live: DashboardLiveEvents,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** `?workflow&status&from&to&tz&id&parent&limit&cursor`: a page of runs, newest first, and the counts per status. */
  @Get('api/runs')
  @JsonApi()
  runs(@Query() query: Query): Promise<RunsPage> {
    return this.reader.runs(parseRunsQuery(query));
  }

  /** `?workflow`: runs per status. */
  @Get('api/counts')
  @JsonApi()
  counts(@Query() query: Query): Promise<Record<RunStatus, number>> {
    return this.reader.counts(parseCountsQuery(query).workflow);
  }

  @Get('api/workflows')
  @JsonApi()
  workflows(@Query() query: Query): Promise<WorkflowView[]> {
    parseNoQuery(query);
    return this.reader.workflows();
  }

  /** A run: values redacted and cut at about 10 KB (`ref` names each cut value for the `value` route). */
  @Get('api/runs/:runId')
  @JsonApi()
  run(@Param('runId') runId: string, @Query() query: Query): Promise<RunDetail> {
    parseNoQuery(query);
    return this.reader.run(parseRunId(runId));
  }

  /** `?limit&cursor`: a page of the run's history. */
  @Get('api/runs/:runId/history')
  @JsonApi()
  history(@Param('runId') runId: string, @Query() query: Query): Promise<{ events: HistoryEventView[]; cursor?: string }> {
    const id = parseRunId(runId);
    return this.reader.history(id, parseHistoryQuery(query));
  }

  @Get('api/runs/:runId/signals')
  @JsonApi()
  signals(@Param('runId') runId: string, @Query() query: Query): Promise<{ name: string; payload: ShownValue }[]> {
    parseNoQuery(query);
    return this.reader.signals(parseRunId(runId));
  }

  /** `?ref=input|output|error|steps.<n>.output|…`: one value whole ("show all"), redacted. */
  @Get('api/runs/:runId/value')
  @JsonApi()
  value(@Param('runId') runId: string, @Query() query: Query): Promise<{ ref: string; value: ShownValue }> {
    return this.reader.value(parseRunId(runId), parseValueRef(query));
  }

  /** A CSRF token for scripts that call the actions (the pages embed theirs); sets the cookie it must come with. */
  @Get('api/csrf')
  @JsonApi()
  csrf(@Req() request: DashboardRequest, @Res({ passthrough: true }) response: unknown, @Query() query: Query): { token: string } {
    parseNoQuery(query);
    let token = csrfCookie(request);
    if (!token) {
      token = newCsrfToken();
      this.adapterHost.httpAdapter.setHeader(response, 'Set-Cookie', csrfSetCookie(token));
    }
    return { token };
  }

  /** `?runId&workflow`: server-sent events naming the runs that change (a `hello` first, with the scope). */
  @Sse('api/events')
  events(@Query() query: Query, @Req() request: DashboardRequest & { socket?: Socket; raw?: { socket?: Socket } }): Observable<MessageEvent> {
    return this.live.stream(parseEventsQuery(query), request.raw?.socket ?? request.socket);
  }
}
