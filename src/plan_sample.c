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
 * Only statements that are slow, sampled, deeply offset or unbounded go
 * further; they take one of the plan tables' LWLocks and may build text,
 * read the catalogs (relation and column names) and print the plan, all
 * outside the locks and inside PG_TRY so that a failure only loses the
 * sample.
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

#include "commands/explain.h"
#include "executor/execdesc.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "plan_checks.h"
#include "plan_sample.h"
#include "store_plans.h"
#include "text_mask.h"

#define PFG_ARMED_CACHE			512 /* backend-local probe table, 2 x MAX_SLOW */

/* Backend-local cache of armed fingerprints. */
typedef struct pfgArmedSlot
{
	uint64		queryid;
	Oid			dbid;
	int32		idx;			/* slot in the slow table, -1 = empty */
} pfgArmedSlot;

/*---- local state ----*/
static uint32 armed_gen_seen = 0;	/* shared generation starts at 1 */
static int	armed_count = 0;
static pfgArmedSlot armed_cache[PFG_ARMED_CACHE];
static pfgPlanEvidenceFn evidence_fn = NULL;	/* index evidence (report) */

/*---- static functions ----*/
static void plan_sample(QueryDesc *qd, const pfgStmtKey *key, double ms,
						bool slow);
static void record_unbounded(QueryDesc *qd, const pfgStmtKey *key,
							 int64 rows, double ms);

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
	armed_count = n;
	armed_gen_seen = gen;
}

/*
 * pfg_plan_executor_start
 *		HOOK-START: instrument this execution (row counts) when its
 *		fingerprint is armed and a unit of its budget can be claimed.  Must
 *		run before the standard ExecutorStart.  Never raises an error.
 */
void
pfg_plan_executor_start(QueryDesc *queryDesc, bool track)
{
	uint32		gen;
	uint64		queryid;
	uint32		h;
	int			idx = -1;
	bool		claimed = false;

	if (!track || !pfg_plans_ready())
		return;
	gen = pfg_plans_armed_gen();
	if (unlikely(gen != armed_gen_seen))
		armed_refresh(gen);
	if (likely(armed_count == 0))
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
		queryDesc->instrument_options |= INSTRUMENT_ROWS;
}

/*
 * pfg_plan_executor_end
 *		HOOK-END: called before the standard ExecutorEnd, with the tracked
 *		execution's key, duration (ms) and rows.  Records deep OFFSETs,
 *		unbounded results and slow or sampled plans.  Never raises an error.
 */
void
pfg_plan_executor_end(QueryDesc *queryDesc, const pfgStmtKey *key,
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
			pfg_plans_record_offset(key, offset, rows, ms);
	}
	else if (rows > pfg_unbounded_rows && key->toplevel &&
			 queryDesc->operation == CMD_SELECT &&
			 !queryDesc->plannedstmt->hasModifyingCTE)
		record_unbounded(queryDesc, key, rows, ms);

	slow = (ms > pfg_slow_query_ms);
	if (slow || ps->instrument != NULL)
		plan_sample(queryDesc, key, ms, slow);
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
plan_sample(QueryDesc *qd, const pfgStmtKey *key, double ms, bool slow)
{
	bool		analyzed = (qd->planstate->instrument != NULL);
	bool		found;
	bool		need_plan;
	bool		kept_analyzed = false;
	double		kept_ms = 0;
	char	   *volatile text = NULL;
	pfgWalk    *volatile walk = NULL;
	MemoryContext tmpcxt;
	MemoryContext oldcxt;

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

	pfg_plans_slow_record(key, slow, analyzed, ms, text);

	if (walk->nfound > 0)
		pfg_plans_record_findings(key, walk->found, walk->nfound, ms);
	MemoryContextDelete(tmpcxt);

	/* the index advisor's evidence: guarded there, once per window */
	if (evidence_fn != NULL && key->toplevel)
		evidence_fn(qd, key, analyzed);
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
record_unbounded(QueryDesc *qd, const pfgStmtKey *key, int64 rows, double ms)
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
	pfg_plans_record_findings(key, &x, 1, ms);
}

