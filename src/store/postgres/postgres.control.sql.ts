import { DUE_ON_RELEASE, TERMINAL_STATUSES } from '../run-state-machine.js';
import { quoteLiteral, type SchemaNames, sqlList } from './postgres.schema.js';
import { appendEventsSql, concKey, freeSlotSql, notifyExpr, trimEventsSql } from './postgres.sql-fragments.js';

/** The statements for signals (take, send) and control requests (pause, resume, cancel, retry); see `Statements`. */
export function controlStatements(n: SchemaNames) {
  const terminal = sqlList(TERMINAL_STATUSES);
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  /**
   * Signal pop: the earliest sent queued signal (lowest id) named one of `namesParam` (text[]) of the run locked by
   * CTE `cur`.
   */
  const popSignal = (namesParam: string) => `
    DELETE FROM ${n.signals} g WHERE g.id = (
      SELECT q.id FROM ${n.signals} q
      WHERE q.run_id = $1::text AND q.name = ANY (${namesParam}::text[]) AND EXISTS (SELECT 1 FROM cur)
      ORDER BY q.id LIMIT 1
    ) RETURNING g.name, g.payload`;

  /**
   * The history event (`event`, a text parameter; null: none) of a request applied by CTE `upd` (which returns the
   * run's `event_seq`, already counting it): appended (`ea`), and the history trimmed to RUN_HISTORY_LIMIT (`et`).
   */
  const eventCtes = (event: string) => `
    ea AS (${appendEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq: 'upd.event_seq', bodies: `ARRAY[${event}]`, when: `${event} IS NOT NULL` })}),
    et AS (${trimEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq: 'upd.event_seq', when: `${event} IS NOT NULL` })}),`;
  /** `event_seq` counting the event `event` (a text parameter; null: none). */
  const countEvent = (event: string) => `event_seq = r.event_seq + CASE WHEN ${event} IS NULL THEN 0 ELSE 1 END`;

  /**
   * A control request: `cur` locks the run, `d` decides the outcome, `upd` applies it when ok, with its history event
   * (`event`, the parameter's placeholder). `extra`: more CTEs, after `upd`.
   */
  const control = (outcome: string, set: string, evt: string, event: string, extra = '') => `
    WITH cur AS MATERIALIZED (
      SELECT r.run_id, r.status, r.pause_requested, r.cancel_compensate, r.resume_status,
        (r.lease_expires_at IS NOT NULL AND r.lease_expires_at > now()) AS live, r.slot_held, r.conc_key, r.conc_scope
      FROM ${n.runs} r WHERE r.run_id = $1::text
      FOR NO KEY UPDATE
    ),
    d AS MATERIALIZED (SELECT cur.*, ${outcome} AS outcome FROM cur),
    upd AS (
      UPDATE ${n.runs} r SET ${set}, updated_at = now(), ${countEvent(event)}
      FROM d WHERE r.run_id = d.run_id AND d.outcome = 'ok'
      RETURNING r.run_id, r.event_seq
    ),${eventCtes(event)}${extra}
    e AS (SELECT d.*, CASE WHEN d.outcome = 'ok' THEN ${evt} END AS evt FROM d)
    SELECT e.status, e.outcome, e.evt, CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified,
      CASE WHEN ${event} IS NOT NULL THEN (SELECT upd.event_seq FROM upd) END AS event_seq
    FROM e`;

  return {
    // $1 the payload (see messagePayload in postgres.event-hub.ts)
    publish: `SELECT pg_notify(${quoteLiteral(n.channel)}, $1::text) AS notified`,

    // $1 run_id, $2 token, $3 signal names (text[])
    takeSignal: `
      WITH cur AS MATERIALIZED (
        SELECT r.run_id, r.wait_until, now() AS ts FROM ${n.runs} r
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        FOR NO KEY UPDATE
      ),
      sig AS (${popSignal('$3')}),
      upd AS (
        UPDATE ${n.runs} r SET status = 'running', next_input = sig.payload, next_input_signal = sig.name, wait_signals = NULL, wait_until = NULL,
          updated_at = cur.ts
        FROM cur, sig WHERE r.run_id = cur.run_id
        RETURNING r.run_id
      )
      SELECT (SELECT payload FROM sig) AS payload, (SELECT name FROM sig) AS signal,
        (cur.wait_until IS NOT NULL AND cur.wait_until <= cur.ts) AS timed_out
      FROM cur`,

    // $1 run_id, $2 name, $3 payload, $4 history event (null: none), $5 deduplication id (null: none), $6 maxQueued
    // (null: no bound). An id already accepted for the run (`signal_ids`) stores nothing (`dup`); the row lock
    // serializes the sends of one run, and the INSERT … ON CONFLICT sees an id committed after this statement's
    // snapshot too. `full`: the run already holds $6 queued signals (counted on the signals index, in this statement's
    // snapshot: sends of the run committed while this one waited for its row lock are not counted, so concurrent sends
    // may go a few past the bound, never far).
    sendSignal: `
      WITH cur AS MATERIALIZED (
        SELECT r.run_id, r.status, r.wait_signals FROM ${n.runs} r WHERE r.run_id = $1::text
        FOR NO KEY UPDATE
      ),
      room AS MATERIALIZED (
        SELECT $6::integer IS NULL OR (SELECT count(*) FROM (SELECT 1 FROM ${n.signals} s WHERE s.run_id = $1::text LIMIT $6::integer) q) < $6::integer AS ok
      ),
      gid AS (
        INSERT INTO ${n.signalIds} (run_id, id)
        SELECT cur.run_id, $5::text FROM cur WHERE $5::text IS NOT NULL AND cur.status NOT IN ${terminal}
          AND (SELECT room.ok FROM room)
        ON CONFLICT (run_id, id) DO NOTHING
        RETURNING run_id
      ),
      ok AS MATERIALIZED (
        SELECT cur.* FROM cur WHERE cur.status NOT IN ${terminal} AND (SELECT room.ok FROM room)
          AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM gid))
      ),
      ins AS (
        INSERT INTO ${n.signals} (run_id, name, payload)
        SELECT ok.run_id, $2::text, $3::text FROM ok
        RETURNING id
      ),
      upd AS (
        UPDATE ${n.runs} r SET signal_seq = r.signal_seq + 1,
          due_at = CASE WHEN $2::text = ANY (ok.wait_signals) THEN now() ELSE r.due_at END, ${countEvent('$4::text')}
        FROM ok WHERE r.run_id = ok.run_id
        RETURNING r.run_id, r.event_seq
      ),${eventCtes('$4::text')}
      e AS (
        SELECT cur.*,
          CASE WHEN $5::text IS NULL THEN false
               -- NOTE: a repeated id is a noop even once the run has ended (the signal was accepted the first time).
               WHEN cur.status IN ${terminal} THEN EXISTS (SELECT 1 FROM ${n.signalIds} gi WHERE gi.run_id = cur.run_id AND gi.id = $5::text)
               -- A full queue inserts no id: a repeat is told by the ids already accepted.
               WHEN NOT (SELECT room.ok FROM room) THEN EXISTS (SELECT 1 FROM ${n.signalIds} gi WHERE gi.run_id = cur.run_id AND gi.id = $5::text)
               ELSE NOT EXISTS (SELECT 1 FROM gid) END AS dup,
          CASE WHEN cur.status = 'waiting' AND $2::text = ANY (cur.wait_signals) AND EXISTS (SELECT 1 FROM ok) THEN 'ready' END AS evt
        FROM cur
      )
      SELECT e.status, e.dup, e.evt, (SELECT room.ok FROM room) AS room, CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified,
        CASE WHEN $4::text IS NOT NULL THEN (SELECT upd.event_seq FROM upd) END AS event_seq
      FROM e`,

    // $1 run_id, $2 history event (null: none). NOTE: pausing a run without a live lease keeps its due time (a start
    // delay, a debounce, a sleep, a wait's timeout, a backoff, a blocked run's place), except in the statuses a release
    // makes due (DUE_ON_RELEASE) for a run whose expired lease it ends (it was executing; `r.lease_token` is the value
    // before this update) or that has no due time (a held child): those are due at once. A run with `scope: 'step'`
    // gives its slot back (rule F2: `slot_held` cleared, `fk` takes it from its key's `held`).
    pause: control(
      `CASE WHEN cur.status IN ${terminal} THEN 'not-active'
            WHEN cur.status = 'paused' OR cur.pause_requested THEN 'noop' ELSE 'ok' END`,
      `pause_requested = CASE WHEN d.live THEN true ELSE r.pause_requested END,
       status = CASE WHEN d.live THEN r.status ELSE 'paused' END,
       resume_status = CASE WHEN d.live THEN r.resume_status ELSE r.status END,
       lease_owner = CASE WHEN d.live THEN r.lease_owner END,
       lease_token = CASE WHEN d.live THEN r.lease_token END,
       lease_expires_at = CASE WHEN d.live THEN r.lease_expires_at END,
       due_at = CASE WHEN NOT d.live AND (r.lease_token IS NOT NULL OR r.due_at IS NULL) AND r.status IN ${sqlList(DUE_ON_RELEASE)}
         THEN now() ELSE r.due_at END,
       slot_held = r.slot_held AND (d.live OR r.conc_scope IS DISTINCT FROM 'step')`,
      `CASE WHEN d.live THEN 'control' END`,
      '$2::text',
      `
    fk AS (${freeSlotSql(n, `SELECT ${concKey('d.conc_key')} FROM d WHERE d.outcome = 'ok' AND NOT d.live AND d.slot_held AND d.conc_scope = 'step'`)}),`,
    ),
    // $1 run_id, $2 history event (null: none)
    resume: control(
      `CASE WHEN cur.status IN ${terminal} THEN 'not-active'
            WHEN cur.status = 'paused' OR cur.pause_requested THEN 'ok' ELSE 'noop' END`,
      `status = CASE WHEN d.status = 'paused' THEN COALESCE(r.resume_status, 'pending') ELSE r.status END,
       resume_status = CASE WHEN d.status = 'paused' THEN NULL ELSE r.resume_status END,
       pause_requested = CASE WHEN d.status = 'paused' THEN r.pause_requested ELSE false END`,
      `CASE WHEN d.status = 'paused' THEN 'ready' END`,
      '$2::text',
    ),
    // $1 run_id, $2 compensate, $3 history event (null: none)
    cancel: control(
      `CASE WHEN cur.status = 'cancelled' OR cur.status = 'compensating' OR cur.cancel_compensate IS NOT NULL THEN 'noop'
            WHEN cur.status IN ${terminal} THEN 'not-active' ELSE 'ok' END`,
      `cancel_compensate = $2::boolean,
       pause_requested = false,
       status = CASE WHEN r.status = 'paused' THEN COALESCE(r.resume_status, 'pending') ELSE r.status END,
       resume_status = CASE WHEN r.status = 'paused' THEN NULL ELSE r.resume_status END,
       due_at = now()`,
      `CASE WHEN d.live THEN 'control' ELSE 'ready' END`,
      '$3::text',
    ),
    // $1 run_id, $2 history event (null: none), $3 the run's next input (null: left as it is; given, it is no signal's
    // payload: next_input_signal is cleared)
    retry: control(
      `CASE WHEN cur.status = 'failed' THEN 'ok' ELSE 'invalid-state' END`,
      `status = 'pending', error = NULL, finished_at = NULL, due_at = now(), next_input = COALESCE($3::text, r.next_input),
       next_input_signal = CASE WHEN $3::text IS NULL THEN r.next_input_signal END`,
      `'ready'`,
      '$2::text',
    ),
  };
}
