/*-------------------------------------------------------------------------
 *
 * plan_sample.c
 *		Adaptive plan sampling on the hot path: slow-query plan samples and
 *		their plan findings (found by plan_checks.c), deep OFFSET pagination
 *		and unbounded results; what is found goes to the plan tables of the
 *		store (store_plans.c).
 *
 * How plans are sampled.  Instrumenting every execution would cost every
 * statement the per-node counters, so sampling is adaptive: the first
 * execution of a fingerprint slower than perfguard.slow_query_ms is recorded
 * with the plan EXPLAIN can print without instrumentation (estimates only),
 * and it "arms" the fingerprint with a budget of PFG_SAMPLE_BUDGET
 * executions.  The next executions of an armed fingerprint, in any backend,
 * claim one unit of the budget at ExecutorStart and run with
 * INSTRUMENT_ROWS (row counts and loops, no timer).  At ExecutorEnd the
 * executed PlanState tree of an instrumented execution is walked for
 * findings, and its EXPLAIN text (actual rows and loops) replaces the kept
 * plan when it is the slowest instrumented sample so far.  A fingerprint
 * that stays slow is re-armed (budget 1) at most every PFG_REARM_SECS.
 *
 * Deep OFFSET and unbounded results need no instrumentation: the top plan
 * node of a paginated query is a Limit whose evaluated offset is in
 * LimitState->offset, and the rows a SELECT returned are es_processed.
 *
 * Cost on the hot path (an unsampled statement):
 *	ExecutorStart	one branch on "tracked", one pg_atomic_read_u32 of the
 *					shared arming generation compared with the backend's copy
 *					(the local cache of armed fingerprints is rebuilt only when
 *					the generation moved), one branch on "nothing armed"; when
 *					something is armed, one probe of a 512-slot backend-local
 *					open-addressing table.  About 10-20 instructions, no lock.
 *	ExecutorEnd		a NodeTag test of the top plan node, then two or three
 *					integer/double comparisons (offset, rows, slow_query_ms) and
 *					a test of planstate->instrument.  About 15 instructions.
 * Only statements that are slow, sampled, deeply offset or unbounded go
 * further; they take one of this module's LWLocks and may build text, read
 * the catalogs (relation and column names) and print the plan, all outside
 * the locks and inside PG_TRY so that a failure only loses the sample.
 *
 * Where the time of a slow statement goes.  A plan change saves only the
 * time the plan spends working; pg_sleep(), an advisory or row lock, a
 * client that reads slowly all make a statement slow without any plan
 * problem.  So an instrumented sample also measures its CPU time and its
 * block reads (time from track_io_timing, else PFG_ASSUMED_READ_MS per block
 * read outside shared buffers): its work.  The rest of its duration was
 * spent waiting.  Without a sample, a waiting function in the plan
 * (pg_sleep, pg_advisory_lock, ...) says the same.  The findings view ranks
 * a slow statement by its work only.  Parallel plans are not measured (their
 * workers' CPU time is not the leader's).  Findings and samples carry the
 * route of the request that ran them (pfg_scope_route).
 *
 * The statements of perfguard's own reports are not sampled: perfguard.c
 * skips this module for them.
 *
 * Plan text is stored with its constants as $n unless
 * perfguard.capture_parameters is on (text_mask.c).
 *
 * A recorded sample also goes to the index advisor (evidence_fn), which
 * proves index candidates with the execution's values at most once per
 * fingerprint and window, guarded (index_evidence.c).
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/plan_sample.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "commands/explain.h"
#include "executor/execdesc.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "plan_checks.h"
#include "plan_sample.h"
#include "scope.h"
#include "store_plans.h"
#include "text_mask.h"

#define PFG_ARMED_CACHE			512 /* backend-local probe table, 2 x MAX_SLOW */
#define PFG_SAMPLE_STARTS		8	/* instrumented executions in flight */
#define PFG_ASSUMED_READ_MS		1.0 /* a block read, without track_io_timing */

/* Backend-local cache of armed fingerprints. */
typedef struct pfgArmedSlot
{
	uint64		queryid;
	Oid			dbid;
	int32		idx;			/* slot in the slow table, -1 = empty */
} pfgArmedSlot;

/* What an instrumented execution had used when it started. */
typedef struct pfgSampleStart
{
	QueryDesc  *qd;
	uint64		queryid;
	double		cpu_ms;
	int64		blks_read;
	instr_time	io_time;
} pfgSampleStart;

/*---- local state ----*/
uint32		pfg_plan_armed_seen = 0;	/* shared generation starts at 1 */
int			pfg_plan_armed_count = 0;
static pfgArmedSlot armed_cache[PFG_ARMED_CACHE];
static pfgPlanEvidenceFn evidence_fn = NULL;	/* index evidence (report) */
static pfgSampleStart sample_starts[PFG_SAMPLE_STARTS];
int			pfg_plan_nsample_starts = 0;

/*---- static functions ----*/
static void plan_sample(QueryDesc *qd, const pfgStmtKey *key, double ms,
						bool slow, const char *route);
static void record_unbounded(QueryDesc *qd, const pfgStmtKey *key,
							 int64 rows, double ms, const char *route);
static void sample_start(QueryDesc *qd);
static bool sample_work(QueryDesc *qd, double ms, double *work_ms);
static const char *wait_function(QueryDesc *qd);

/*
 * pfg_plan_set_evidence_fn
 *		Register the function called for each recorded sample (perfguard.c
 *		registers the index advisor's evidence).
 */
void
pfg_plan_set_evidence_fn(pfgPlanEvidenceFn fn)
{
	evidence_fn = fn;
}

/*---- the sample budget ----*/

static inline uint32
armed_hash(uint64 queryid, Oid dbid)
{
	/* the query id is already a hash */
	return (uint32) (queryid ^ (queryid >> 32) ^ dbid) & (PFG_ARMED_CACHE - 1);
}

/*
 * armed_refresh
 *		Rebuild the backend-local cache of armed fingerprints from the slow
 *		table (which takes its lock in shared mode).
 */
static void
armed_refresh(uint32 gen)
{
	pfgArmed	armed[PFG_MAX_SLOW];
	int			n = pfg_plans_armed(armed, PFG_MAX_SLOW);
	int			i;

	for (i = 0; i < PFG_ARMED_CACHE; i++)
		armed_cache[i].idx = -1;
	for (i = 0; i < n; i++)
	{
		uint32		h = armed_hash(armed[i].queryid, armed[i].dbid);

		while (armed_cache[h].idx >= 0)
			h = (h + 1) & (PFG_ARMED_CACHE - 1);
		armed_cache[h].queryid = armed[i].queryid;
		armed_cache[h].dbid = armed[i].dbid;
		armed_cache[h].idx = armed[i].idx;
	}
	pfg_plan_armed_count = n;
	pfg_plan_armed_seen = gen;
}

/*
 * pfg_plan_executor_start
 *		HOOK-START: instrument this execution (row counts) when its
 *		fingerprint is armed and a unit of its budget can be claimed.  Must
 *		run before the standard ExecutorStart.  Never raises an error.
 */
void
pfg_plan_executor_start_slow(QueryDesc *queryDesc, bool track)
{
	uint32		gen;
	uint64		queryid;
	uint32		h;
	int			idx = -1;
	bool		claimed = false;

	if (!track || !pfg_plans_ready())
		return;
	gen = pfg_plans_armed_gen();
	if (unlikely(gen != pfg_plan_armed_seen))
		armed_refresh(gen);
	if (likely(pfg_plan_armed_count == 0))
		return;

	queryid = queryDesc->plannedstmt->queryId;
	h = armed_hash(queryid, MyDatabaseId);
	while (armed_cache[h].idx >= 0)
	{
		if (armed_cache[h].queryid == queryid &&
			armed_cache[h].dbid == MyDatabaseId)
		{
			idx = armed_cache[h].idx;
			break;
		}
		h = (h + 1) & (PFG_ARMED_CACHE - 1);
	}
	if (idx < 0)
		return;

	claimed = pfg_plans_claim(idx, queryid, MyDatabaseId);

	if (claimed)
	{
		queryDesc->instrument_options |= INSTRUMENT_ROWS;
		sample_start(queryDesc);
	}
}

/*
 * pfg_plan_executor_end
 *		HOOK-END: called before the standard ExecutorEnd, with the tracked
 *		execution's key, duration (ms) and rows.  Records deep OFFSETs,
 *		unbounded results and slow or sampled plans.  Never raises an error.
 */
void
pfg_plan_executor_end_slow(QueryDesc *queryDesc, const pfgStmtKey *key,
						   double ms, int64 rows)
{
	PlanState  *ps = queryDesc->planstate;
	bool		slow;

	if (!pfg_plans_ready() || ps == NULL)
		return;

	if (IsA(ps, LimitState))
	{
		int64		offset = ((LimitState *) ps)->offset;

		if (offset >= pfg_offset_threshold)
			pfg_plans_record_offset(key, offset, rows, ms, pfg_scope_route());
	}
	else if (rows > pfg_unbounded_rows && key->toplevel &&
			 queryDesc->operation == CMD_SELECT &&
			 !queryDesc->plannedstmt->hasModifyingCTE)
		record_unbounded(queryDesc, key, rows, ms, pfg_scope_route());

	slow = (ms > pfg_slow_query_ms);
	if (slow || ps->instrument != NULL)
		plan_sample(queryDesc, key, ms, slow, pfg_scope_route());
	else if (unlikely(pfg_plan_nsample_starts > 0))
		(void) sample_work(queryDesc, ms, NULL);	/* forget its start */
}

/*---- slow queries ----*/

/*
 * plan_text
 *		EXPLAIN text of the executed plan: with actual rows and loops when the
 *		nodes were instrumented, else with estimates only.  palloc'd in the
 *		current context; may ERROR (catalog access).
 */
static char *
plan_text(QueryDesc *qd, bool analyzed)
{
	ExplainState *es = NewExplainState();

	es->analyze = analyzed;
	es->costs = true;
	es->verbose = false;
	es->buffers = false;
	es->timing = analyzed && (qd->instrument_options & INSTRUMENT_TIMER) != 0;
	es->summary = false;
	es->format = EXPLAIN_FORMAT_TEXT;

	ExplainBeginOutput(es);
	ExplainPrintPlan(es, qd);
	ExplainEndOutput(es);
	if (es->str->len > 0 && es->str->data[es->str->len - 1] == '\n')
		es->str->data[--es->str->len] = '\0';
	return es->str->data;
}

/*
 * plan_sample
 *		A slow execution, or an instrumented one: keep its plan when it is the
 *		best sample so far, walk it for findings, arm the fingerprint.
 *
 * Phases: (1) a shared-lock probe of the slow table decides whether the
 * plan text is needed; (2) no lock, in a temporary memory context inside
 * PG_TRY: walk the plan and print it; (3) the slow table takes the entry
 * and the text under its exclusive lock (pfg_plans_slow_record).
 */
static void
plan_sample(QueryDesc *qd, const pfgStmtKey *key, double ms, bool slow,
			const char *route)
{
	bool		analyzed = (qd->planstate->instrument != NULL);
	bool		found;
	bool		need_plan;
	bool		kept_analyzed = false;
	double		kept_ms = 0;
	char	   *volatile text = NULL;
	pfgWalk    *volatile walk = NULL;
	const char *volatile wait_what = NULL;
	pfgSampleTime st;
	MemoryContext tmpcxt;
	MemoryContext oldcxt;

	st.measured = sample_work(qd, ms, &st.work_ms);
	st.wait_what = NULL;
	found = pfg_plans_slow_find(key, &kept_analyzed, &kept_ms);

	/* instrumented by someone else and neither slow nor ours: not a sample */
	if (!found && !slow)
		return;

	if (!found)
		need_plan = true;
	else if (analyzed)
		need_plan = !kept_analyzed || ms > kept_ms;
	else
		need_plan = !kept_analyzed && ms > kept_ms;

	tmpcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "perfguard plan sample",
								   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(tmpcxt);
	PG_TRY();
	{
		pfgWalk    *w = palloc0(sizeof(pfgWalk));

		w->pstmt = qd->plannedstmt;
		w->analyzed = analyzed;
		pfg_plan_walk(qd->planstate, w);
		walk = w;
		wait_what = wait_function(qd);
		if (need_plan)
		{
			text = plan_text(qd, analyzed);
			/* no parameter value in shared memory (text_mask.c) */
			if (!pfg_capture_parameters)
				text = pfg_mask_plan_text(text);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("perfguard: could not sample the plan: %s",
						edata->message)));
		FreeErrorData(edata);
		MemoryContextDelete(tmpcxt);
		return;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);

	st.wait_what = wait_what;
	pfg_plans_slow_record(key, slow, analyzed, ms, text, route, &st);

	if (walk->nfound > 0)
		pfg_plans_record_findings(key, walk->found, walk->nfound, ms, route);
	MemoryContextDelete(tmpcxt);

	/* the index advisor's evidence: guarded there, once per window */
	if (evidence_fn != NULL && key->toplevel)
		evidence_fn(qd, key, analyzed);
}

/*---- where the time goes ----*/

static double
cpu_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return -1;
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0;
}

static int64
blocks_read_now(void)
{
	return pgBufferUsage.shared_blks_read + pgBufferUsage.local_blks_read +
		pgBufferUsage.temp_blks_read;
}

/*
 * sample_start
 *		An execution was just instrumented: remember its CPU time and block
 *		reads so far.  Serial plans only; a full table skips the measure.
 */
static void
sample_start(QueryDesc *qd)
{
	pfgSampleStart *s;
	double		cpu;

	if (qd->plannedstmt->parallelModeNeeded)
		return;
	/* starts of executions that failed are never ended: forget them */
	if (pfg_plan_nsample_starts >= PFG_SAMPLE_STARTS)
		pfg_plan_nsample_starts = 0;
	cpu = cpu_now_ms();
	if (cpu < 0)
		return;
	s = &sample_starts[pfg_plan_nsample_starts++];
	s->qd = qd;
	s->queryid = qd->plannedstmt->queryId;
	s->cpu_ms = cpu;
	s->blks_read = blocks_read_now();
	s->io_time = pgBufferUsage.blk_read_time;
	INSTR_TIME_ADD(s->io_time, pgBufferUsage.blk_write_time);
}

/*
 * sample_work
 *		For an execution that sample_start measured: its work in ms (CPU time
 *		plus block reads), at most its duration.  Forgets the start (a NULL
 *		work_ms only forgets it).  False when it was not measured.
 */
static bool
sample_work(QueryDesc *qd, double ms, double *work_ms)
{
	int			i;

	for (i = pfg_plan_nsample_starts - 1; i >= 0; i--)
	{
		pfgSampleStart s;
		double		io_ms;
		double		cpu;
		instr_time	io;

		if (sample_starts[i].qd != qd ||
			sample_starts[i].queryid != qd->plannedstmt->queryId)
			continue;
		s = sample_starts[i];
		sample_starts[i] = sample_starts[--pfg_plan_nsample_starts];
		if (work_ms == NULL)
			return false;
		cpu = cpu_now_ms();
		if (cpu < 0)
			return false;
		if (track_io_timing)
		{
			io = pgBufferUsage.blk_read_time;
			INSTR_TIME_ADD(io, pgBufferUsage.blk_write_time);
			INSTR_TIME_SUBTRACT(io, s.io_time);
			io_ms = INSTR_TIME_GET_MILLISEC(io);
		}
		else
			io_ms = (blocks_read_now() - s.blks_read) * PFG_ASSUMED_READ_MS;
		*work_ms = Max(0, Min(ms, (cpu - s.cpu_ms) + io_ms));
		return true;
	}
	return false;
}

/* Functions whose time is spent waiting, by OID, with the name shown. */
static const struct
{
	Oid			fn;
	const char *name;
}			wait_functions[] =
{
	{F_PG_SLEEP, "pg_sleep()"},
	{F_PG_SLEEP_FOR, "pg_sleep_for()"},
	{F_PG_SLEEP_UNTIL, "pg_sleep_until()"},
	{F_PG_ADVISORY_LOCK_INT8, "pg_advisory_lock()"},
	{F_PG_ADVISORY_LOCK_SHARED_INT8, "pg_advisory_lock_shared()"},
	{F_PG_ADVISORY_LOCK_INT4_INT4, "pg_advisory_lock()"},
	{F_PG_ADVISORY_LOCK_SHARED_INT4_INT4, "pg_advisory_lock_shared()"},
	{F_PG_ADVISORY_XACT_LOCK_INT8, "pg_advisory_xact_lock()"},
	{F_PG_ADVISORY_XACT_LOCK_SHARED_INT8, "pg_advisory_xact_lock_shared()"},
	{F_PG_ADVISORY_XACT_LOCK_INT4_INT4, "pg_advisory_xact_lock()"},
	{F_PG_ADVISORY_XACT_LOCK_SHARED_INT4_INT4, "pg_advisory_xact_lock_shared()"}
};

static bool
wait_expr_walker(Node *node, const char **what)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, wait_expr_walker,
								 (void *) what, 0);
	if (IsA(node, FuncExpr))
	{
		Oid			fn = ((FuncExpr *) node)->funcid;
		int			i;

		for (i = 0; i < lengthof(wait_functions); i++)
			if (wait_functions[i].fn == fn)
			{
				*what = wait_functions[i].name;
				return true;
			}
	}
	return expression_tree_walker(node, wait_expr_walker, (void *) what);
}

static bool
wait_plan_walker(PlanState *ps, const char **what)
{
	Plan	   *plan = ps->plan;

	if (wait_expr_walker((Node *) plan->targetlist, what) ||
		wait_expr_walker((Node *) plan->qual, what))
		return true;
	switch (nodeTag(plan))
	{
		case T_Result:
			if (wait_expr_walker(((Result *) plan)->resconstantqual, what))
				return true;
			break;
		case T_FunctionScan:
			if (wait_expr_walker((Node *) ((FunctionScan *) plan)->functions, what))
				return true;
			break;
		case T_ValuesScan:
			if (wait_expr_walker((Node *) ((ValuesScan *) plan)->values_lists, what))
				return true;
			break;
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			if (wait_expr_walker((Node *) ((Join *) plan)->joinqual, what))
				return true;
			break;
		case T_ModifyTable:
			if (wait_expr_walker((Node *) ((ModifyTable *) plan)->returningLists, what))
				return true;
			break;
		default:
			break;
	}
	return planstate_tree_walker(ps, wait_plan_walker, (void *) what);
}

/*
 * wait_function
 *		The name of a function the executed plan calls whose time is spent
 *		waiting (pg_sleep, the advisory locks), or NULL.  Only for slow or
 *		sampled executions.
 */
static const char *
wait_function(QueryDesc *qd)
{
	const char *what = NULL;

	(void) wait_plan_walker(qd->planstate, &what);
	return what;
}

/*
 * pfg_plan_wait_function_in
 *		The same for an analysed statement that has not run (or was not
 *		sampled): a function it calls whose time is spent waiting, or NULL.
 *		Pure tree walk, no catalog access.
 */
const char *
pfg_plan_wait_function_in(Query *query)
{
	const char *what = NULL;

	(void) wait_expr_walker((Node *) query, &what);
	return what;
}

/*---- unbounded results ----*/

/*
 * text_is_cursor
 *		Does the statement's text start with DECLARE?  Rows fetched from a
 *		cursor in batches (Django's .iterator(), Rails' find_each on a
 *		cursor) are the cure for unbounded results, not the disease.
 */
static bool
text_is_cursor(QueryDesc *qd)
{
	const char *p = qd->sourceText;
	int			loc = qd->plannedstmt->stmt_location;

	if (p == NULL)
		return false;
	if (loc > 0)
		p += loc;
	for (;;)
	{
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '*')
		{
			const char *end = strstr(p + 2, "*/");

			if (end == NULL)
				return false;
			p = end + 2;
			continue;
		}
		break;
	}
	return pg_strncasecmp(p, "declare", 7) == 0;
}

/*
 * record_unbounded
 *		A top-level SELECT without a Limit on top returned more than
 *		perfguard.unbounded_rows rows.
 */
static void
record_unbounded(QueryDesc *qd, const pfgStmtKey *key, int64 rows, double ms,
				 const char *route)
{
	pfgFound	x;
	Plan	   *scan = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (text_is_cursor(qd))
		return;

	memset(&x, 0, sizeof(x));
	x.code = PFG_PLAN_UNBOUNDED_RESULT;
	x.value = rows;
	strlcpy(x.node, pfg_plan_node_name(qd->planstate), PFG_NODE_LEN);
	snprintf(x.detail, PFG_DETAIL_LEN,
			 "a SELECT without LIMIT returned %lld rows (perfguard.unbounded_rows = %d)",
			 (long long) rows, pfg_unbounded_rows);
	strlcpy(x.suggestion,
			"paginate: fetch one page at a time with LIMIT and a keyset predicate (WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT n) / Django: Paginator or DRF CursorPagination, slice the queryset (qs[:n]), .iterator(chunk_size=2000) for batch jobs, .values_list()/.only() to fetch fewer columns / Rails: .limit(n), find_each/in_batches for batch jobs; aggregate in SQL (count, sum, exists) instead of loading rows to count them",
			PFG_SUGGEST_LEN);

	/* the main relation, named only when the finding is new */
	PG_TRY();
	{
		if (!pfg_plans_finding_exists(key, PFG_PLAN_UNBOUNDED_RESULT))
		{
			Oid			relid = pfg_plan_first_scan_relid(qd->plannedstmt,
												 qd->planstate->plan, &scan);

			if (OidIsValid(relid))
			{
				char	   *rel = get_rel_name(relid);

				if (rel)
					strlcpy(x.relation, rel, PFG_REL_LEN);
			}
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		x.relation[0] = '\0';
	}
	PG_END_TRY();

	/* relid stays 0: one unbounded_result per statement */
	pfg_plans_record_findings(key, &x, 1, ms, route);
}

