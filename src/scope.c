/*-------------------------------------------------------------------------
 *
 * scope.c
 *		Request scopes and the detectors that live in them: N+1 runs,
 *		duplicate queries, write loops, repeating sequences, queries per
 *		request, and the guard settings that turn them into errors.
 *
 * A scope groups the client statements of one request.  Its boundaries, in
 * order of precedence (see the contract and the README):
 *	1. explicit: perfguard.begin_request() .. end_request(), on one session;
 *	2. sqlcommenter tags: a statement whose tags differ from the scope's
 *	   starts a new scope; statements without a comment never change it;
 *	3. an idle gap longer than perfguard.request_gap;
 *	4. for untagged traffic, the end of an explicit transaction block.
 * An untagged implicit scope is also cut after PFG_SCOPE_MAX_QUERIES
 * statements, so a busy connection that never pauses does not grow one
 * endless request.
 *
 * Requests with an id.  A request tagged with a traceparent (its trace id)
 * or a request_id is one scope across every backend: through a transaction
 * pooler its statements land on several backends, and one backend
 * interleaves several requests.  Its state lives in the shared table of
 * open requests (store_requests.c), and every backend that runs one of its
 * statements runs the detectors on that state while it holds the entry's
 * partition lock, so a threshold crossed only by the merged count fires
 * (and guards) where it is crossed.  Such a request ends when no backend
 * ran one of its statements for its request_gap: whoever notices first (a
 * view, or the creation of another request in the same partition) flushes
 * it.  A backend that has been idle for its request_gap forgets which
 * request it was in, so its next untagged statement opens a local scope.
 *
 * Other scopes (untagged, explicit, tagged with a route only) are
 * backend-local and lock-free, with the same state layout and the same
 * detectors.
 *
 * Cost per statement: for a local scope, two probes of open-addressing
 * tables whose slots are invalidated in O(1) by a generation counter when a
 * scope ends.  For a request with an id, the same probes under its
 * partition LWLock at the start of the statement (found through where this
 * backend found it last); the end posts its time and rows into a box of
 * the request under the entry's spinlock, applied by the next backend that
 * takes the lock (store_requests.c).  The findings of a request with an id
 * are flushed when it ends, before a view reads, and when a backend that
 * ran its statements exits (report-time work), not on the statements that
 * find them.
 *
 * The N+1 rule.  An N+1 is a repeated SELECT whose executions follow one
 * parent query of the same request that returned several rows, at least as
 * many as the distinct parameter sets: with such a parent it fires from
 * perfguard.n_plus_one_linked_threshold (2) distinct parameter sets, or
 * when one parameter set ran once per parent row (a loop over one value).
 * Without a multi-row parent, a tagged or explicit request fires from
 * perfguard.n_plus_one_threshold (5) distinct parameter sets, an untagged
 * one never.  Cursors count as parents with the rows fetched so far.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fingerprint.h"
#include "scope.h"
#include "scope_comments.h"
#include "scope_findings.h"
#include "sqlcommenter.h"
#include "store.h"
#include "store_requests.h"

#define PFG_SCOPE_MAX_QUERIES	1000
#define PFG_LOCAL_FPS			1024
#define PFG_LOCAL_PARAMS		(1 << 15)

/* What the detectors decided for one execution, acted on with no lock. */
typedef struct scopeActions
{
	int			np_action;
	int			dup_action;
	bool		too_many;
	bool		capture;
	bool		np_update;		/* collect mode: a collected N+1 grew */
	bool		dup_update;
	bool		too_many_update;
	int32		distinct;
	/* for the messages */
	int32		repeats;
	int32		max_same;
	int64		queries;
	uint64		queryid;
	uint64		parent_queryid;
	char		label[PFG_ROUTE_LEN];
	int			framework;		/* pfgFramework of the request */
} scopeActions;

/*---- backend-local state ----*/

/* The local scope (untagged, explicit, or tagged without an id). */
static pfgReqState *local_st = NULL;

/* The request with an id this backend is in, if any. */
static struct
{
	bool		active;
	pfgReqKey	key;
	char		label[PFG_ROUTE_LEN];
	int			framework;		/* pfgFramework of its tags */
	TimestampTz last_end;		/* end of this backend's last statement in it */
	bool		touched;		/* ran a statement of a request with an id */
} shreq;

/*
 * Where the entries of the last few requests with an id were found (a
 * backend behind a pooler interleaves a few): the lock is taken through
 * them, and the key compared under it, instead of hashing and walking.
 */
#define PFG_REQ_HINTS	4
static struct
{
	pfgReqKey	key;
	pfgReqHint	hint;
} req_hints[PFG_REQ_HINTS];
static int	req_hint_victim = 0;

static uint64 exec_seq = 0;		/* top-level executions seen */

/* The start of the current top-level statement (pfg_scope_statement_start). */
static TimestampTz stmt_start_ts = 0;
static bool scope_exit_registered = false;

/* the last top-level execution (perfguard's own reports; issue 17) */
static pfgScopeRef last_exec_ref;

/* The current statement carries perfguard='ignore'. */
static bool stmt_ignore = false;

/* The current statement is test traffic (perfguard='test'). */
static bool stmt_test = false;

/*
 * The fix of an N+1, for the guard's hint: derived from the catalogs by a
 * module of the report layer, which perfguard.c registers here (this layer
 * may not call up into it).
 */
static pfg_fix_fn scope_fix_fn = NULL;

static void local_begin(bool explicit_scope, bool tagged, uint64 keyhash,
						const char *label);
static void local_end(void);
static void state_account(pfgReqState *st);
static void shared_end_cb(pfgReqState *st);
static void shared_open_cb(pfgReqState *st);
static void scope_atexit(int code, Datum arg);
static void scope_guard(int action, int sqlstate, const scopeActions *a,
						const char *src, int loc, int len);


/*
 * pfg_scope_set_fix_fn
 *		Register the function that derives an N+1's fix for guard messages.
 */
void
pfg_scope_set_fix_fn(pfg_fix_fn fn)
{
	scope_fix_fn = fn;
}

/*
 * scope_init
 *		Backend-local set-up, done lazily at first use.
 */
static void
scope_init(void)
{
	Size		size;

	if (local_st != NULL)
		return;
	size = pfg_req_state_size(PFG_LOCAL_FPS, PFG_LOCAL_PARAMS);
	local_st = MemoryContextAllocHuge(TopMemoryContext, size);
	pfg_req_state_init(local_st, PFG_LOCAL_FPS, PFG_LOCAL_PARAMS);
	/* a local scope posts no statement end: its boxes stay empty */
	memset(local_st->boxes, 0, sizeof(local_st->boxes));
	if (!scope_exit_registered)
	{
		before_shmem_exit(scope_atexit, (Datum) 0);
		scope_exit_registered = true;
	}
}

/*---- the state of a request ----*/

static inline uint32
mix64(uint64 v)
{
	v ^= v >> 33;
	v *= UINT64CONST(0xff51afd7ed558ccd);
	v ^= v >> 33;
	return (uint32) v;
}

/*
 * state_begin
 *		Empty a state for a new request: a new generation invalidates every
 *		slot in O(1).
 */
static void
state_begin(pfgReqState *st, bool explicit_scope, bool tagged,
			uint64 keyhash, const char *label)
{
	st->open = true;
	st->explicit_scope = explicit_scope;
	st->tagged = tagged;
	st->xact = false;
	st->end_after = false;
	st->dirty = false;
	st->too_many_done = false;
	st->test = false;
	st->framework = PFG_FW_NONE;
	st->keyhash = keyhash;
	st->userid = GetUserId();
	st->dbid = MyDatabaseId;
	if (label && label[0])
		strlcpy(st->label, label, sizeof(st->label));
	else
		strlcpy(st->label, application_name ? application_name : "",
				sizeof(st->label));
	st->route_hash = pfg_route_hash(st->label);
	st->queries = 0;
	st->total_ms = 0;
	st->first_exec = 0;
	st->last_select = 0;
	st->last_multirow = 0;
	st->last_multirow_rows = 0;
	st->running = 0;
	st->nfps = 0;
	st->nparams = 0;
	st->ring_n = 0;
	st->nseqs = 0;
	st->gen++;
	if (st->gen == 0)
	{
		/* wrapped: really clear the slots once */
		memset(pfg_req_idx(st), 0, sizeof(pfgReqIdx) * st->idx_cap);
		memset(pfg_req_params(st), 0, sizeof(pfgReqParam) * st->params_cap);
		st->gen = 1;
	}
}

/*
 * fp_lookup
 *		Find or add the fingerprint in a request.  NULL when the request has
 *		as many fingerprints as it can hold.
 */
static pfgReqFp *
fp_lookup(pfgReqState *st, uint64 queryid, bool *isnew)
{
	pfgReqIdx  *idx = pfg_req_idx(st);
	uint32		mask = st->idx_cap - 1;
	uint32		h = mix64(queryid) & mask;
	pfgReqFp   *fp;

	*isnew = false;
	for (;;)
	{
		pfgReqIdx  *s = &idx[h];

		if (s->gen != st->gen)
			break;
		if (s->queryid == queryid)
			return &pfg_req_fps(st)[s->idx];
		h = (h + 1) & mask;
	}
	if (st->nfps >= st->fps_cap)
		return NULL;
	fp = &pfg_req_fps(st)[st->nfps];
	memset(fp, 0, sizeof(pfgReqFp));
	fp->queryid = queryid;
	fp->seq_idx = -1;
	idx[h].gen = st->gen;
	idx[h].idx = st->nfps;
	idx[h].queryid = queryid;
	st->nfps++;
	*isnew = true;
	return fp;
}

/*
 * param_lookup
 *		Find or add (fingerprint, parameter hash).  NULL when the table is
 *		three quarters full.
 */
static pfgReqParam *
param_lookup(pfgReqState *st, uint64 queryid, uint64 paramhash, bool *isnew)
{
	pfgReqParam *params = pfg_req_params(st);
	uint32		mask = st->params_cap - 1;
	uint32		h = mix64(queryid ^ paramhash) & mask;
	pfgReqParam *s;

	*isnew = false;
	for (;;)
	{
		s = &params[h];
		if (s->gen != st->gen)
			break;
		if (s->queryid == queryid && s->paramhash == paramhash)
			return s;
		h = (h + 1) & mask;
	}
	if (st->nparams * 4 >= st->params_cap * 3)
		return NULL;
	s->gen = st->gen;
	s->queryid = queryid;
	s->paramhash = paramhash;
	s->count = 0;
	st->nparams++;
	*isnew = true;
	return s;
}

/*---- local scopes ----*/

/*
 * local_begin
 *		Open a new local scope.  The previous one must have been ended.
 */
static void
local_begin(bool explicit_scope, bool tagged, uint64 keyhash,
			const char *label)
{
	scope_init();
	state_begin(local_st, explicit_scope, tagged, keyhash, label);
}

/*
 * local_end
 *		Close the local scope: flush its findings and account the request
 *		to its route.
 */
static void
local_end(void)
{
	if (local_st == NULL || !local_st->open)
		return;
	pfg_scope_flush_state(local_st, true);
	pfg_scope_forget_example();
	state_account(local_st);
	local_st->open = false;
	local_st->nfps = 0;
	local_st->gen++;
	if (local_st->gen == 0)
		local_st->gen = 1;
}

/*
 * state_summary
 *		What a request adds to its route's statistics.
 */
static void
state_summary(pfgReqState *st, pfgRequestKey *rkey, pfgRequestDelta *d)
{
	pfgReqFp   *fps = pfg_req_fps(st);
	int			i;

	memset(rkey, 0, sizeof(*rkey));
	rkey->dbid = st->dbid;
	rkey->userid = st->userid;
	rkey->route_hash = st->route_hash;
	d->queries = st->queries;
	d->total_ms = st->total_ms;
	d->had_n_plus_one = d->had_duplicate = d->had_write_loop = false;
	for (i = 0; i < st->nfps; i++)
	{
		pfgReqFp   *fp = &fps[i];

		if (fp->ignore_state == 2 || fp->self)
			continue;
		d->had_n_plus_one |= fp->np_fired;
		d->had_duplicate |= fp->dup_fired;
		d->had_write_loop |= fp->wl_fired;
	}
}

/*
 * state_account
 *		Account a finished request to its route (perfguard.requests).
 */
static void
state_account(pfgReqState *st)
{
	pfgRequestKey rkey;
	pfgRequestDelta d;

	if (st->queries <= 0 || !pfg_store_ready())
		return;
	state_summary(st, &rkey, &d);
	pfg_store_record_request(&rkey, st->label, &d);
}

typedef struct openCtx
{
	pfg_open_request_cb cb;
	void	   *arg;
} openCtx;

static void
open_visit(pfgReqState *st, void *arg)
{
	openCtx    *ctx = (openCtx *) arg;
	pfgRequestKey rkey;
	pfgRequestDelta d;

	if (!st->open || st->queries <= 0)
		return;
	state_summary(st, &rkey, &d);
	ctx->cb(&rkey, st->label, &d, ctx->arg);
}

/*
 * pfg_scope_foreach_open
 *		Call cb with the route statistics of every request with an id that is
 *		still open (its statements so far), so that perfguard.requests shows
 *		a request as soon as it ran, not only once it ended.  cb runs with a
 *		partition lock held: it must only copy.
 */
void
pfg_scope_foreach_open(pfg_open_request_cb cb, void *arg)
{
	openCtx		ctx;

	ctx.cb = cb;
	ctx.arg = arg;
	pfg_requests_foreach(open_visit, &ctx);
}

/*
 * shared_end_cb
 *		A request with an id ended (idle, or evicted): flush what it found
 *		and account it.  Runs with its partition lock held, in whatever
 *		backend noticed: it only copies into the store.
 */
static void
shared_end_cb(pfgReqState *st)
{
	if (!st->open)
		return;
	pfg_scope_flush_state(st, false);
	state_account(st);
	st->open = false;
}

/*
 * shared_open_cb
 *		A request with an id that stays open: flush what it found so far
 *		(the views read it; a backend that ran its statements exits).
 */
static void
shared_open_cb(pfgReqState *st)
{
	if (st->open && st->dirty)
		pfg_scope_flush_state(st, false);
}

static void
scope_atexit(int code, Datum arg)
{
	/* Only while shared memory is attached, never raising. */
	PG_TRY();
	{
		/*
		 * What the open requests found since their last flush (ending the
		 * idle ones is left to the views, as always).
		 */
		if (shreq.touched && pfg_store_ready())
			pfg_requests_expire(GetCurrentTimestamp(), NULL, shared_open_cb);
		if (code == 0 && local_st && local_st->open)
			local_end();
	}
	PG_CATCH();
	{
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * statement_start (pfg_scope_statement_start, and inline at the start of
 *		pfg_scope_executor_start)
 *		Called at the start of every top-level statement: applies the idle gap
 *		and the sqlcommenter rules, and opens a scope if none is open.
 */
static inline void
statement_start(const char *src, int loc, int len)
{
	const pfgComment *cslot = NULL;
	TimestampTz start = GetCurrentStatementStartTimestamp();
	TimestampTz gap = (TimestampTz) pfg_request_gap * 1000;

	stmt_start_ts = start;

	scope_init();
	if (local_st->open && !local_st->explicit_scope && local_st->last_end != 0 &&
		start - local_st->last_end > gap)
		local_end();
	if (shreq.active && start - shreq.last_end > gap)
		shreq.active = false;	/* it ends by itself, wherever it ran */

	stmt_ignore = false;
	stmt_test = false;
	if (src != NULL)
		cslot = pfg_comment_lookup(src, loc, len);

	if (cslot != NULL)
	{
		stmt_ignore = (cslot->flags & PFG_TAG_IGNORE) != 0;
		stmt_test = (cslot->flags & PFG_TAG_TEST) != 0;
		if (cslot->tagged && !(local_st->open && local_st->explicit_scope))
		{
			uint64		keyhash = cslot->keyhash;

			if (pfg_tags_key_is_id(cslot->key))
			{
				/* a request with an id: the shared one, on any backend */
				if (!shreq.active || shreq.key.idhash != keyhash ||
					shreq.key.dbid != MyDatabaseId)
				{
					local_end();
					memset(&shreq.key, 0, sizeof(shreq.key));
					shreq.key.dbid = MyDatabaseId;
					shreq.key.idhash = keyhash;
					strlcpy(shreq.label, cslot->label, sizeof(shreq.label));
					shreq.framework = cslot->framework;
					shreq.active = true;
				}
			}
			else if (shreq.active || !local_st->open || !local_st->tagged ||
					 local_st->keyhash != keyhash)
			{
				shreq.active = false;
				local_end();
				local_begin(false, true, keyhash, cslot->label);
			}
		}
		/* the framework of any tagged statement (explicit scopes too) */
		if (!shreq.active && local_st->open &&
			local_st->framework == PFG_FW_NONE)
			local_st->framework = cslot->framework;
	}

	if (shreq.active)
		return;

	if (local_st->open && !local_st->explicit_scope && !local_st->tagged &&
		local_st->queries >= PFG_SCOPE_MAX_QUERIES)
		local_end();

	if (!local_st->open)
		local_begin(false, false, 0, NULL);
}

void
pfg_scope_statement_start(const char *src, int loc, int len)
{
	statement_start(src, loc, len);
}

/*
 * pfg_scope_utility
 *		Rule 4: for untagged traffic outside an explicit scope, BEGIN starts
 *		a scope and the end of the transaction block ends it.
 */
void
pfg_scope_utility(Node *parsetree)
{
	TransactionStmt *ts;

	if (!IsA(parsetree, TransactionStmt) || shreq.active || local_st == NULL)
		return;
	if (local_st->open && (local_st->explicit_scope || local_st->tagged))
		return;
	ts = (TransactionStmt *) parsetree;
	switch (ts->kind)
	{
		case TRANS_STMT_BEGIN:
		case TRANS_STMT_START:
			if (!IsTransactionBlock())
			{
				local_end();
				local_begin(false, false, 0, NULL);
				local_st->xact = true;
			}
			break;
		case TRANS_STMT_COMMIT:
		case TRANS_STMT_ROLLBACK:
		case TRANS_STMT_PREPARE:
			if (local_st->open && local_st->xact)
				local_st->end_after = true;
			break;
		default:
			break;
	}
}

/*
 * pfg_scope_statement_end
 *		Called at the end of every top-level statement: remembers the time
 *		(for the idle gap), flushes findings that changed, and ends the scope
 *		if the statement ended a transaction block that started it.
 */
void
pfg_scope_statement_end(double exec_ms)
{
	TimestampTz end;

	/*
	 * The end of an executor statement is its start plus its run time (an
	 * underestimate by the parse/plan/send time, immaterial against
	 * request_gap), which saves a clock read; utilities read the clock.
	 */
	if (exec_ms >= 0)
		end = stmt_start_ts + (TimestampTz) (exec_ms * 1000.0);
	else
		end = GetCurrentTimestamp();

	if (shreq.active)
		shreq.last_end = end;
	else if (local_st != NULL && local_st->open)
	{
		local_st->last_end = end;
		if (local_st->dirty)
		{
			pfg_scope_flush_state(local_st, true);
			pfg_scope_forget_example();
		}
		if (local_st->end_after)
			local_end();
	}
	/* fixes of new findings: not after transaction control (a utility) */
	if (unlikely(pfg_pending_fixes > 0) && exec_ms >= 0)
		pfg_scope_drain_fixes(scope_fix_fn);
}

/*---- detectors ----*/

/*
 * seq_detect
 *		The current fingerprint ran p = 2..5 statements ago: do the last 3p
 *		statements of the request repeat that period of p distinct
 *		fingerprints?  At most 2p + p(p-1)/2 comparisons, and only for a
 *		fingerprint not yet in a sequence whose previous run was 2 to 5
 *		statements back (never for a fingerprint repeated back to back).
 */
static void
seq_detect(pfgReqState *st, int p)
{
	pfgReqFp   *fps = pfg_req_fps(st);
	int			i,
				j;
	pfgReqSeq  *sq;
	int32		members[PFG_SEQ_MAX];
	int			first;
	uint64		id;

#define RING(i) st->ring[(st->ring_n - 1 - (i)) & (PFG_RING - 1)]
	if (st->ring_n < (uint64) (3 * p))
		return;
	for (i = 0; i < 2 * p; i++)
		if (RING(i) != RING(i + p))
			return;
	for (i = 0; i < p; i++)
		for (j = i + 1; j < p; j++)
			if (RING(i) == RING(j))
				return;

	/* members in execution order, rotated to start at the first seen */
	for (i = 0; i < p; i++)
	{
		bool		isnew;
		pfgReqFp   *m = fp_lookup(st, RING(p - 1 - i), &isnew);

		if (m == NULL || isnew || m->seq_idx >= 0)
			return;
		members[i] = m - fps;
	}
#undef RING
	first = 0;
	for (i = 1; i < p; i++)
		if (members[i] < members[first])
			first = i;
	if (st->nseqs >= PFG_MAX_SEQS)
	{
		pfg_store_count_dropped_event();
		return;
	}
	sq = &st->seqs[st->nseqs];
	memset(sq, 0, sizeof(pfgReqSeq));
	sq->n = p;
	id = UINT64CONST(0x53455155454e4345);
	for (i = 0; i < p; i++)
	{
		sq->fpidx[i] = members[(first + i) % p];
		id = (id ^ fps[sq->fpidx[i]].queryid) * UINT64CONST(0x100000001b3);
		fps[sq->fpidx[i]].seq_idx = st->nseqs;
		fps[sq->fpidx[i]].dirty = true;
	}
	sq->id = id ? id : 1;
	st->nseqs++;
	st->dirty = true;
}

/*
 * np_fires
 *		Does this SELECT fingerprint make an N+1 now?  See the file header.
 */
static inline bool
np_fires(pfgReqState *st, pfgReqFp *fp)
{
	bool		linked = fp->parent_queryid != 0 && fp->parent_rows >= 2 &&
		fp->parent_rows >= fp->distinct;

	/*
	 * A statement without parameters does not depend on the row it would be
	 * run for, one that skips rows with OFFSET pages through a list, and one
	 * with a list of values loads a batch (prefetching chunk by chunk).
	 */
	if (!fp->has_params || fp->paged || fp->batched)
		return false;

	if (linked)
	{
		if (fp->distinct >= pfg_n_plus_one_linked_threshold)
			return true;
		/* one value looked up once per parent row */
		return fp->distinct == 1 && fp->repeats >= 2 &&
			fp->repeats >= fp->parent_rows;
	}
	return (st->tagged || st->explicit_scope) &&
		fp->distinct >= pfg_n_plus_one_threshold;
}

/*
 * detect
 *		Account one execution in the request "st" and run the detectors.
 *		Pure bookkeeping on the state (the caller holds its lock when it is
 *		shared): what to do about it (guards, an example to capture) goes to
 *		*act, to be done with no lock held.  Never raises an error.
 */
static void
detect(pfgReqState *st, pfgScopeRef *ref, uint64 queryid, CmdType cmd,
	   uint64 paramhash, bool batched, scopeActions *act)
{
	pfgReqFp   *fp;
	pfgReqParam *ps;
	bool		isnew;
	bool		newparams;

	if (st->queries == 0)
		st->first_exec = exec_seq;
	st->queries++;

	fp = fp_lookup(st, queryid, &isnew);
	if (fp == NULL)
	{
		pfg_store_count_dropped_event();
		return;
	}
	if (isnew)
	{
		fp->cmd = cmd;
		if (st->last_multirow != 0 && st->last_multirow != queryid)
		{
			fp->parent_queryid = st->last_multirow;
			fp->parent_rows = st->last_multirow_rows;
		}
		else if (st->last_select != queryid)
		{
			fp->parent_queryid = st->last_select;
			fp->parent_rows = (st->last_select == st->last_multirow) ?
				st->last_multirow_rows : 1;
		}
	}
	else if (fp->parent_queryid != 0 && fp->parent_queryid == st->last_multirow)
		fp->parent_rows = Max(fp->parent_rows, st->last_multirow_rows);
	fp->repeats++;
	if (paramhash != 0)
		fp->has_params = true;
	if (batched)
		fp->batched = true;
	ref->gen = st->gen;
	ref->fpidx = fp - pfg_req_fps(st);

	st->ring[st->ring_n & (PFG_RING - 1)] = queryid;
	st->ring_n++;
	if (fp->seq_idx >= 0)
		st->dirty = true;
	else if (fp->repeats >= 3 && st->ring_n - fp->last_pos >= 2 &&
			 st->ring_n - fp->last_pos <= PFG_SEQ_MAX)
		seq_detect(st, (int) (st->ring_n - fp->last_pos));
	fp->last_pos = st->ring_n;

	ps = param_lookup(st, queryid, paramhash, &newparams);
	if (ps != NULL)
	{
		ps->count++;
		if (newparams)
			fp->distinct++;
		if (ps->count > fp->max_same)
			fp->max_same = ps->count;
	}

	if (stmt_test && !st->test)
	{
		/* test traffic: its own route entry, findings left out of reports */
		char		label[PFG_ROUTE_LEN];

		st->test = true;
		snprintf(label, sizeof(label), "[test] %s", st->label);
		strlcpy(st->label, label, sizeof(st->label));
		st->route_hash = pfg_route_hash(st->label);
	}
	if (stmt_ignore)
	{
		fp->ignore_state = 2;
		fp->inband_ignored = true;
	}

	if (cmd == CMD_SELECT)
	{
		if (!fp->np_fired && np_fires(st, fp))
		{
			fp->np_fired = true;
			fp->dirty = true;
			st->dirty = true;
			ref->np_add = fp->repeats;
			act->np_action = pfg_on_n_plus_one;
		}
		else if (fp->np_fired)
		{
			ref->np_add = 1;
			fp->dirty = true;
			st->dirty = true;
		}

		/* duplicates: one parameter set executed duplicate_threshold times */
		if (ps != NULL && ps->count >= pfg_duplicate_threshold)
		{
			int			add = (ps->count == pfg_duplicate_threshold) ?
				pfg_duplicate_threshold - 1 : 1;

			fp->dup_execs += add;
			ref->dup_add = add;
			fp->dirty = true;
			st->dirty = true;
			if (!fp->dup_fired)
			{
				fp->dup_fired = true;
				act->dup_action = pfg_on_duplicate;
			}
		}
	}
	else if (cmd == CMD_INSERT || cmd == CMD_UPDATE || cmd == CMD_DELETE ||
			 cmd == CMD_MERGE)
	{
		if (fp->repeats >= pfg_write_loop_threshold)
		{
			fp->wl_fired = true;
			fp->dirty = true;
			st->dirty = true;
		}
	}

	/*
	 * Suppression is looked up once per request and fingerprint, when a
	 * detector first fires: a suppressed finding is still recorded (as
	 * ignored) but never triggers a guard nor flags the request.
	 */
	if ((fp->np_fired || fp->dup_fired || fp->wl_fired) && fp->ignore_state == 0)
		fp->ignore_state = pfg_store_is_ignored(queryid, st->route_hash) ? 2 : 1;
	if (fp->ignore_state == 2)
		act->np_action = act->dup_action = PFG_GUARD_OFF;

	/* one example per finding kind, taken when the kind first fires */
	if (pfg_capture_parameters)
	{
		uint8		fired = (fp->np_fired ? 1 : 0) | (fp->dup_fired ? 2 : 0) |
			(fp->wl_fired ? 4 : 0);

		if ((fired & ~fp->example_taken) != 0)
		{
			fp->example_taken |= fired;
			act->capture = true;
		}
	}

	if (pfg_max_queries_per_request > 0 && !st->too_many_done &&
		st->queries > pfg_max_queries_per_request &&
		pfg_on_too_many_queries != PFG_GUARD_OFF)
	{
		st->too_many_done = true;
		act->too_many = true;
	}

	if (pfg_on_n_plus_one == PFG_GUARD_COLLECT && fp->np_fired &&
		fp->ignore_state != 2)
		act->np_update = true;
	if (pfg_on_duplicate == PFG_GUARD_COLLECT && fp->dup_fired &&
		fp->ignore_state != 2)
		act->dup_update = true;
	if (pfg_on_too_many_queries == PFG_GUARD_COLLECT && st->too_many_done)
		act->too_many_update = true;

	/* what a message needs (a copy: the state may be shared) */
	if (act->np_action != PFG_GUARD_OFF || act->dup_action != PFG_GUARD_OFF ||
		act->too_many || act->np_update || act->dup_update ||
		act->too_many_update)
	{
		act->repeats = fp->repeats;
		act->distinct = fp->distinct;
		act->max_same = fp->max_same;
		act->parent_queryid = fp->parent_queryid;
		act->queries = st->queries;
		act->queryid = queryid;
		act->framework = st->framework;
		strlcpy(act->label, st->label, sizeof(act->label));
	}
}

/*
 * shared_acquire
 *		The current request with an id, locked; created (and initialised for
 *		this statement's database, user and route) when it is not open.
 */
static pfgReqState *
shared_acquire(const pfgReqKey *key, bool create, int *box, LWLock **lock)
{
	pfgReqHint *hint = NULL;
	pfgReqState *st;
	int			i;

	for (i = 0; i < PFG_REQ_HINTS; i++)
		if (req_hints[i].key.idhash == key->idhash &&
			req_hints[i].key.dbid == key->dbid)
		{
			hint = &req_hints[i].hint;
			break;
		}
	if (hint == NULL)
	{
		i = req_hint_victim;
		req_hint_victim = (req_hint_victim + 1) % PFG_REQ_HINTS;
		req_hints[i].key = *key;
		req_hints[i].hint.st = NULL;
		hint = &req_hints[i].hint;
	}
	st = pfg_requests_acquire_hinted(key, hint, box, lock);
	if (st == NULL)
	{
		hint->st = NULL;		/* not there any more, if it was */
		st = pfg_requests_acquire(key, create, shared_end_cb, hint, box, lock);
	}

	/*
	 * Its id came back after its request_gap with nothing running: that
	 * request ended (a view would have ended it), this is a new one.  The
	 * box this statement just took counts as running.
	 */
	if (st != NULL && create && st->open &&
		st->running <= ((box != NULL && *box >= 0) ? 1 : 0) &&
		stmt_start_ts - st->last_end > (TimestampTz) st->gap_ms * 1000)
		shared_end_cb(st);
	if (st != NULL && create && !st->open)
	{
		state_begin(st, false, true, key->idhash, shreq.label);
		if (box != NULL && *box >= 0)
			pfg_requests_restamp_box(st, *box);
	}
	if (st != NULL && create && st->framework == PFG_FW_NONE)
		st->framework = shreq.framework;
	return st;
}

/*
 * pfg_scope_executor_start
 *		Account one top-level execution in the current scope, run the
 *		detectors and the guard settings.  Fills "ref" so that the end of the
 *		execution can add its time.  "batched": the statement had a list of
 *		constants (IN (...), ARRAY[...]), so it loads a batch, not one row's
 *		relation.  Starts the statement in the scope first
 *		(pfg_scope_statement_start, inline here: this runs for every
 *		statement).  May ERROR only through a guard setting at "error".
 */
void
pfg_scope_executor_start(pfgScopeRef *ref, uint64 queryid, CmdType cmd,
						 uint64 paramhash, bool batched, const char *src,
						 int loc, int len, ParamListInfo params)
{
	scopeActions act;

	statement_start(src, loc, len);
	ref->gen = 0;
	ref->fpidx = -1;
	ref->np_add = 0;
	ref->dup_add = 0;
	ref->shared = false;
	ref->flush_end = false;
	ref->box = -1;
	ref->st = NULL;
	act.np_action = act.dup_action = PFG_GUARD_OFF;
	act.too_many = act.capture = false;
	act.np_update = act.dup_update = act.too_many_update = false;
	act.label[0] = '\0';
	act.framework = PFG_FW_NONE;

	if (unlikely(pfg_pending_fixes > 0))
		pfg_scope_drain_fixes(scope_fix_fn);

	exec_seq++;
	if (shreq.active)
	{
		LWLock	   *lock;
		int			box;
		pfgReqState *st = shared_acquire(&shreq.key, true, &box, &lock);

		if (st == NULL)
		{
			pfg_store_count_dropped_event();
			return;
		}
		st->gap_ms = pfg_request_gap;
		st->last_end = stmt_start_ts;
		detect(st, ref, queryid, cmd, paramhash, batched, &act);
		/* the box it ends into without the lock (running till then) */
		ref->box = box;
		ref->box_gen = st->gen;

		/*
		 * The findings of a request with an id are flushed when it ends, when
		 * a view reads and when a backend that ran its statements exits, not
		 * here; but an example parameter set is captured with no lock held,
		 * then flushed at the end of this statement by this backend.
		 */
		if (act.capture)
			ref->flush_end = true;
		LWLockRelease(lock);
		ref->shared = true;
		ref->key = shreq.key;
		ref->st = st;
		shreq.touched = true;
	}
	else if (local_st != NULL && local_st->open)
		detect(local_st, ref, queryid, cmd, paramhash, batched, &act);
	else
		return;
	last_exec_ref = *ref;

	if (act.capture)
		pfg_scope_capture_example(queryid, src, loc, len, params);
	if (act.np_action != PFG_GUARD_OFF)
		scope_guard(act.np_action, ERRCODE_PFG_N_PLUS_ONE, &act, src, loc, len);
	else if (act.np_update)
		pfg_collect_update(PFG_FIND_NPLUSONE, queryid, act.label, act.repeats,
					   act.distinct);
	if (act.dup_action != PFG_GUARD_OFF)
		scope_guard(act.dup_action, ERRCODE_PFG_DUPLICATE, &act, src, loc, len);
	else if (act.dup_update)
		pfg_collect_update(PFG_FIND_DUPLICATE, queryid, act.label, act.max_same, 1);
	if (act.too_many && pfg_on_too_many_queries == PFG_GUARD_COLLECT)
		pfg_collect_add(0, 0, act.label, act.queries, 0, NULL, NULL, NULL);
	else if (act.too_many_update)
		pfg_collect_update(0, 0, act.label, act.queries, 0);
	else if (act.too_many)
	{
		int			elevel = pfg_on_too_many_queries == PFG_GUARD_ERROR ? ERROR :
			pfg_on_too_many_queries == PFG_GUARD_WARNING ? WARNING : LOG;

		ereport(elevel,
				(errcode(ERRCODE_PFG_TOO_MANY_QUERIES),
				 errmsg("perfguard: request \"%s\" ran %lld queries, more than perfguard.max_queries_per_request (%d)",
						act.label, (long long) act.queries,
						pfg_max_queries_per_request),
				 errhint("Load related rows with joins or prefetching, or raise perfguard.max_queries_per_request.")));
	}
}

/*
 * scope_guard
 *		Apply a guard setting to the statement that crossed a threshold.  The
 *		message names the repeated statement and the count; the hint gives the
 *		fix (derived from the foreign keys, which is allowed here: this runs
 *		once per request and fingerprint, not per statement).
 */
static void
scope_guard(int action, int sqlstate, const scopeActions *a,
			const char *src, int loc, int len)
{
	int			elevel = action == PFG_GUARD_ERROR ? ERROR :
		action == PFG_GUARD_WARNING ? WARNING : LOG;
	char	   *volatile text = NULL;
	char	   *volatile hint = NULL;
	char	   *volatile parent = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		int			n = len;

		text = pfg_normalize_query(src, loc, &n);
		if (sqlstate == ERRCODE_PFG_N_PLUS_ONE)
		{
			pfgFix		fix;
			const char *q = text;

			parent = pfg_store_get_query(GetUserId(), MyDatabaseId,
										 a->parent_queryid, true);
			if (scope_fix_fn)
				hint = scope_fix_fn(parent, &q, 1, a->framework, &fix);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();

	if (action == PFG_GUARD_COLLECT)
	{
		if (sqlstate == ERRCODE_PFG_N_PLUS_ONE)
			pfg_collect_add(PFG_FIND_NPLUSONE, a->queryid, a->label, a->repeats,
						a->distinct, text, parent, hint);
		else
			pfg_collect_add(PFG_FIND_DUPLICATE, a->queryid, a->label, a->max_same,
						1, text, NULL, NULL);
		return;
	}

	if (sqlstate == ERRCODE_PFG_N_PLUS_ONE)
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg("perfguard: N+1 query: the same statement ran %d times with different parameters in request \"%s\"",
						a->repeats, a->label),
				 errdetail("Statement: %s%s%s", text ? text : "(unavailable)",
						   parent ? "\nParent: " : "", parent ? parent : ""),
				 errhint("%s", hint ? hint : "Load the related rows in the parent query (a JOIN, select_related/prefetch_related, includes).")));
	else
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg("perfguard: duplicate query: the same statement with the same parameters ran %d times in request \"%s\"",
						a->max_same, a->label),
				 errdetail("Statement: %s", text ? text : "(unavailable)"),
				 errhint("Run it once and reuse the result (keep it in a variable or cache it), or hoist it out of the loop.")));
}

/*
 * pfg_scope_executor_end
 *		Add an execution's time to its fingerprint in its request and fill
 *		the per-statement counters; "paged" tells that it skipped rows with
 *		an OFFSET.  A request with an id also gets its
 *		changed findings flushed here, while its lock is held.
 */
void
pfg_scope_executor_end(pfgScopeRef *ref, uint64 queryid, CmdType cmd,
					   double ms, int64 rows, bool paged, pfgExecStats *stats)
{
	stats->n_plus_one_calls = ref->np_add;
	stats->duplicate_calls = ref->dup_add;
	if (ref->shared)
	{
		LWLock	   *lock;
		pfgReqState *st;
		TimestampTz end = stmt_start_ts +
			(TimestampTz) (ms * 1000.0);

		if (ref->box >= 0)
		{
			/* the common case: post the end, no partition lock */
			pfg_requests_post_end(ref->st, ref->box, ref->box_gen, ref->fpidx,
								  queryid, cmd, ms, rows, end, paged, false);
			if (!ref->flush_end)
				return;
		}

		/* no box, or a finding's example to flush: under the lock */
		st = shared_acquire(&ref->key, false, NULL, &lock);
		if (st == NULL)
			return;
		if (ref->box < 0)
		{
			pfg_req_note_end(st, ref->gen, ref->fpidx, queryid, cmd, ms, rows,
							 paged);
			st->last_end = Max(st->last_end, end);
		}
		if (st->dirty)
			pfg_scope_flush_state(st, true);
		LWLockRelease(lock);
		pfg_scope_forget_example();
		return;
	}
	if (local_st != NULL)
		pfg_req_note_end(local_st, ref->gen, ref->fpidx, queryid, cmd, ms,
						 rows, paged);
}

/*
 * pfg_scope_note_rows
 *		A cursor or a portal fetched rows of its query: make it the parent of
 *		what follows with the rows fetched so far (Django's .iterator(),
 *		SQLAlchemy's yield_per, named cursors, row-limited portals).
 */
void
pfg_scope_note_rows(pfgScopeRef *ref, uint64 queryid, int64 rows)
{
	pfgReqState *st;
	LWLock	   *lock = NULL;

	if (ref->gen == 0)
		return;
	if (ref->shared)
		st = shared_acquire(&ref->key, false, NULL, &lock);
	else
		st = local_st;
	if (st != NULL && st->open && ref->gen == st->gen)
	{
		st->last_select = queryid;
		if (rows >= 2)
		{
			st->last_multirow = queryid;
			st->last_multirow_rows = rows;
		}
	}
	if (lock)
		LWLockRelease(lock);
}

/*
 * pfg_scope_abort_ref
 *		A statement will not end (its transaction or subtransaction
 *		aborted): its request must not count it as running.
 */
void
pfg_scope_abort_ref(const pfgScopeRef *ref)
{
	if (!ref->shared || ref->box < 0 || ref->st == NULL)
		return;
	pfg_requests_post_end(ref->st, ref->box, ref->box_gen, -1, 0, CMD_UNKNOWN,
						  0, 0, GetCurrentTimestamp(), false, true);
}

/*
 * pfg_scope_flush
 *		Make what is known visible before a view reads: this backend's open
 *		local scope, and every request with an id that has been idle for its
 *		request_gap (on any backend) ends.
 */
void
pfg_scope_flush(void)
{
	/* the views call this: the running statement is a report */
	pfg_scope_exclude(&last_exec_ref);
	if (local_st != NULL && local_st->open && local_st->dirty)
	{
		pfg_scope_flush_state(local_st, true);
		pfg_scope_forget_example();
	}
	pfg_requests_expire(GetCurrentTimestamp(), shared_end_cb, shared_open_cb);
	pfg_store_harvest();
	if (pfg_pending_fixes > 0)
		pfg_scope_drain_fixes(scope_fix_fn);
}

/*
 * pfg_scope_begin_explicit
 *		perfguard.begin_request(label): end whatever scope is open and open an
 *		explicit one, which only end_request() or the next begin_request()
 *		ends.
 */
void
pfg_scope_begin_explicit(const char *label)
{
	scope_init();

	/*
	 * The statement that calls begin_request() belongs to no request: when
	 * it opened a scope of its own (a sqlcommenter tag on it, or an idle gap
	 * before it), drop that scope instead of counting a one-statement request.
	 */
	if (local_st->open && local_st->queries == 1 &&
		local_st->first_exec == exec_seq && !local_st->dirty &&
		!local_st->explicit_scope)
	{
		local_st->open = false;
		local_st->nfps = 0;
		local_st->gen++;
	}
	if (shreq.active)
	{
		/* the same for a request with an id that this statement opened */
		LWLock	   *lock;
		pfgReqState *st = shared_acquire(&shreq.key, false, NULL, &lock);

		if (st)
		{
			if (st->queries == 1 && st->first_exec == exec_seq && !st->dirty)
			{
				st->queries = 0;
				st->open = false;
			}
			LWLockRelease(lock);
		}
		shreq.active = false;
	}
	local_end();
	local_begin(true, false, 0, label);
}

/*
 * pfg_scope_end_explicit
 *		perfguard.end_request(): summary of the scope, then end it.  The
 *		statement that calls end_request() is not counted.  Returns false when
 *		no explicit scope is open.
 */
bool
pfg_scope_end_explicit(int64 *queries, double *total_ms, int32 *n_plus_one,
					   int32 *duplicates, int32 *write_loops)
{
	pfgReqFp   *fps;
	int			i;

	if (local_st == NULL || !local_st->open || !local_st->explicit_scope)
		return false;
	fps = pfg_req_fps(local_st);
	*queries = local_st->queries > 0 ? local_st->queries - 1 : 0;
	*total_ms = local_st->total_ms;
	*n_plus_one = *duplicates = *write_loops = 0;
	for (i = 0; i < local_st->nfps; i++)
	{
		if (fps[i].ignore_state == 2 || fps[i].self)
			continue;			/* suppressed, or perfguard's own */
		if (fps[i].np_fired)
			(*n_plus_one)++;
		if (fps[i].dup_fired)
			(*duplicates)++;
		if (fps[i].wl_fired)
			(*write_loops)++;
	}
	/* the end_request() statement itself belongs to no request */
	if (local_st->queries > 0)
		local_st->queries--;
	local_end();
	return true;
}

/*---- findings: route, report statements, fixes (issue 17) ----*/

/*
 * pfg_scope_route
 *		The label (route) of the current statement's request, or NULL: the
 *		plan samples of a statement carry the route of the request that ran
 *		it.
 */
const char *
pfg_scope_route(void)
{
	if (shreq.active)
		return shreq.label;
	return (local_st != NULL && local_st->open) ? local_st->label : NULL;
}

/*
 * pfg_scope_exclude
 *		The execution "ref" was perfguard's own report statement (report.c
 *		marked it while it ran): its fingerprint records no finding and flags
 *		no request.  Called at its end, before the statement's flush.
 */
void
pfg_scope_exclude(const pfgScopeRef *ref)
{
	pfgReqState *st = local_st;
	LWLock	   *lock = NULL;

	if (ref->gen == 0 || ref->fpidx < 0 || !pfg_store_ready())
		return;
	if (ref->shared)
		st = shared_acquire(&ref->key, false, NULL, &lock);
	if (st != NULL && st->open && ref->gen == st->gen && ref->fpidx < st->nfps)
		pfg_req_fps(st)[ref->fpidx].self = true;
	if (lock)
		LWLockRelease(lock);
}
