/**
 * Fields of a run hash (`<prefix>{<tag>}:r`, see `redis.keys.ts`), by meaning → field name. Names are short because
 * every script reads several of them on every call. Times are integer milliseconds since the epoch, written by the
 * scripts from the server clock (`TIME`) unless noted.
 *
 * | field   | meaning                                                                                          |
 * | ------- | ------------------------------------------------------------------------------------------------ |
 * | `id`    | run id (checked against the key's run on read)                                                   |
 * | `wf`    | workflow name                                                                                    |
 * | `ver`   | workflow version (decimal)                                                                       |
 * | `st`    | status (`RUN_STATUSES`); anything else parks the run                                             |
 * | `in`    | serialized input (opaque)                                                                        |
 * | `out`   | serialized output (opaque)                                                                       |
 * | `err`   | run error (JSON `{name, message, step?, phase?}`)                                                |
 * | `cur`   | current step name                                                                                |
 * | `state` | the engine's state (JSON, opaque)                                                                |
 * | `ni`    | next input: payload of the signal handed to the run                                              |
 * | `nis`   | name of the signal whose payload `ni` is (`StoredRun.nextInputSignal`): set with `ni` by a wait  |
 * |         | commit or `takeSignal` that takes a queued signal; deleted whenever `ni` is, and by a `retry`    |
 * |         | control that sets `ni` (absent: none)                                                            |
 * | `wn`    | signals the run waits for: JSON array of names                                                   |
 * | `ws`    | signal the run waits for (one name), as written by releases before `wn`: read, never written       |
 * | `wu`    | when the signal wait times out                                                                   |
 * | `rs`    | status to resume to (while paused)                                                               |
 * | `cr`    | cancel requested: `1` with compensation, `0` without (absent: none)                              |
 * | `pr`    | pause requested while leased: `1` / `0`                                                          |
 * | `due`   | due at: from when the run may be claimed (absent: not due)                                       |
 * | `lo`    | lease owner                                                                                      |
 * | `lt`    | lease token (fencing)                                                                            |
 * | `le`    | lease expires at                                                                                 |
 * | `ca`    | created at                                                                                       |
 * | `ua`    | updated at                                                                                       |
 * | `fa`    | finished at (terminal runs)                                                                      |
 * | `iv`    | version of the run's index record: strictly increasing, at least the server clock in microseconds |
 * | `gen`   | generation of the run id (absent: 1)                                                             |
 * | `hs`    | history seq: the seq given to the run's last history event (absent: none yet; see `redis.keys.ts`) |
 * | `pl`    | pipeline fingerprint given at creation (`NewRun.pipeline`; absent: none)                         |
 * | `par`   | parent run id (`StoredRun.parentRunId`; absent: none)                                            |
 * | `ce`    | children: how many times a linked child ended (`ChildrenState.ended`, decimal; monotonic: only     |
 * |         | incremented, by a child's end and by a `children` commit's ended spawn entries; deleted by a       |
 * |         | restart; absent: the run has no children state). Written first by a parent's first spawn (step 0)  |
 * | `cf`    | children: a linked child ended without completing since the last `children` commit (`1`/`0`)    |
 * | `cwe`   | children wait: `endedAtLeast` (decimal; absent: not waiting for children)                        |
 * | `cwf`   | children wait: `failFast` (`1`/`0`)                                                              |
 * | `pri`   | priority (`NewRun.priority`, decimal; absent: 0)                                                 |
 * | `cc`    | concurrency limit (`NewRun.concurrency`): `<scope>:<limit>:<base64url of the key>`, scope `run` or |
 * |         | `step` (absent: none). Written at creation, never changed (a replace writes a new run)             |
 * | `rl`    | rate limit (`NewRun.rateLimit`): `<limit>:<perMs>:<base64url of the key>` (absent: none)          |
 * | `sh`    | slot held: `1` while the run holds one of its concurrency key's slots (rule F2; absent: none).    |
 * |         | Set by the claim that takes the slot, deleted when the run gives it back                         |
 * | `se`    | slot epoch of a run with `cc` or `rl`: the run's `iv` when it was created or last gave a slot back |
 * |         | (an end, a replace, a release with scope `step`), so strictly increasing over the run id's life.  |
 * |         | Admissions are made for one epoch: a claim whose admission is of another epoch is refused (see    |
 * |         | `redis.keys.ts`, flow control)                                                                   |
 */
export const RUN_FIELDS = {
  runId: 'id',
  workflow: 'wf',
  version: 'ver',
  status: 'st',
  input: 'in',
  output: 'out',
  error: 'err',
  currentStep: 'cur',
  state: 'state',
  nextInput: 'ni',
  nextInputSignal: 'nis',
  waitSignals: 'wn',
  legacyWaitSignal: 'ws',
  waitUntil: 'wu',
  resumeStatus: 'rs',
  cancelRequested: 'cr',
  pauseRequested: 'pr',
  dueAt: 'due',
  leaseOwner: 'lo',
  leaseToken: 'lt',
  leaseExpiresAt: 'le',
  createdAt: 'ca',
  updatedAt: 'ua',
  finishedAt: 'fa',
  indexVersion: 'iv',
  generation: 'gen',
  historySeq: 'hs',
  pipeline: 'pl',
  parentRunId: 'par',
  childrenEnded: 'ce',
  childrenFailed: 'cf',
  childrenWaitEndedAtLeast: 'cwe',
  childrenWaitFailFast: 'cwf',
  priority: 'pri',
  concurrency: 'cc',
  rateLimit: 'rl',
  slotHeld: 'sh',
  slotEpoch: 'se',
} as const;

/** Name of a field of a run hash. */
export type RunField = (typeof RUN_FIELDS)[keyof typeof RUN_FIELDS];
