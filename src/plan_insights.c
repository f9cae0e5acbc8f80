/*-------------------------------------------------------------------------
 *
 * plan_insights.c
 *		Slow-query plan samples, plan findings (big filtered Seq Scans,
 *		nested loops that run their inner side many times, sorts and hash
 *		joins that spill, misestimates), deep OFFSET pagination and
 *		unbounded results.
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
 * Shared memory (its own segment "perfguard_plans", fixed at start-up):
 *	- PFG_MAX_SLOW (256) slow fingerprints, each with its plan text of at most
 *	  PFG_PLAN_LEN (8 kB) bytes: about 2.1 MB.  A fixed array searched
 *	  linearly; when full, the least recently seen entry is evicted.
 *	- PFG_MAX_FINDINGS (1024) plan findings, ~1.2 kB each: about 1.3 MB,
 *	  a fixed-size shared hash; when full, the oldest finding is evicted.
 *	- PFG_MAX_OFFSETS (1024) deep-OFFSET statements, ~100 bytes each.
 * Evictions are counted in perfguard.info.dropped_events.  Nothing here is
 * saved across a restart (XXX: the statement store is; samples are cheap to
 * collect again).
 *
 * Lock protocol: three LWLocks of the tranche "perfguard_plans", one per
 * table.  Claims of the sample budget, updates and inserts take the table's
 * lock exclusively; lookups that decide whether text must be built and the
 * readers (views) take it shared.  While a lock is held nothing can ERROR:
 * text is built before the lock and only copied under it.  The arming
 * generation (an atomic) is bumped under the slow-table lock whenever the
 * set of armed fingerprints changes.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/plan_insights.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/explain.h"
#include "common/int.h"
#include "executor/execdesc.h"
#include "executor/hashjoin.h"
#include "executor/instrument.h"
#include "executor/nodeHash.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"

#include "perfguard.h"

/*---- bounds and thresholds ----*/
#define PFG_MAX_SLOW			256 /* slow fingerprints kept */
#define PFG_PLAN_LEN			8192	/* bytes of plan text kept, with NUL */
#define PFG_MAX_FINDINGS		1024	/* plan findings kept */
#define PFG_MAX_OFFSETS			1024	/* deep-OFFSET statements kept */
#define PFG_SAMPLE_BUDGET		3	/* instrumented runs after the first slow one */
#define PFG_REARM_SECS			300 /* re-arm a still-slow fingerprint after */
#define PFG_ARMED_CACHE			512 /* backend-local probe table, 2 x MAX_SLOW */

#define PFG_SEQSCAN_MIN_ROWS	10000	/* rows read per loop: a big table */
#define PFG_SEQSCAN_FILTERED	0.9 /* fraction of them the filter removed */
#define PFG_NESTLOOP_MIN_LOOPS	1000	/* executions of a nested loop's inner side */
#define PFG_MISESTIMATE_FACTOR	10.0	/* actual vs estimated rows */
#define PFG_MISESTIMATE_MIN_ROWS 100.0	/* ignore tiny row counts */

#define PFG_NODE_LEN			32
#define PFG_REL_LEN				NAMEDATALEN
#define PFG_DETAIL_LEN			256
#define PFG_SUGGEST_LEN			768

/* Finding codes; the names are in finding_names[]. */
typedef enum pfgPlanCode
{
	PFG_PLAN_SEQ_SCAN_LARGE = 1,
	PFG_PLAN_NESTED_LOOP_MANY,
	PFG_PLAN_SORT_SPILL,
	PFG_PLAN_HASH_BATCHES,
	PFG_PLAN_MISESTIMATE,
	PFG_PLAN_UNBOUNDED_RESULT,
	PFG_PLAN_NCODES
} pfgPlanCode;

static const char *const finding_names[PFG_PLAN_NCODES] = {
	NULL,
	"seq_scan_large",
	"nested_loop_many",
	"sort_spill",
	"hash_batches",
	"misestimate",
	"unbounded_result"
};

/*---- shared structures ----*/

/* One slow fingerprint and its kept plan. */
typedef struct pfgSlowEntry
{
	bool		inuse;
	bool		plan_analyzed;	/* the kept plan has actual rows */
	int32		budget;			/* instrumented executions still to sample */
	pfgStmtKey	key;
	int64		slow_calls;		/* executions slower than slow_query_ms */
	double		slow_total_ms;
	double		slow_max_ms;
	int64		samples;		/* instrumented executions seen */
	double		plan_ms;		/* duration of the execution whose plan is kept */
	TimestampTz first_seen;
	TimestampTz last_seen;
	TimestampTz last_armed;
	int32		plan_len;
	char		plan[PFG_PLAN_LEN];
} pfgSlowEntry;

/* Key of a plan finding; zero-filled before use (padding is hashed). */
typedef struct pfgPlanFindingKey
{
	pfgStmtKey	stmt;
	int32		code;			/* pfgPlanCode */
	Oid			relid;			/* relation the finding is about, or 0 */
} pfgPlanFindingKey;

typedef struct pfgPlanFinding
{
	pfgPlanFindingKey key;		/* must be first */
	char		node[PFG_NODE_LEN];
	char		relation[PFG_REL_LEN];
	char		detail[PFG_DETAIL_LEN];
	char		suggestion[PFG_SUGGEST_LEN];
	int64		occurrences;	/* executions in which it was seen */
	double		total_ms;		/* time of those executions */
	int64		value_sum;		/* finding-specific amount (rows, loops, ...) */
	int64		value_max;
	TimestampTz last_seen;
} pfgPlanFinding;

/* One statement paginated with a deep OFFSET. */
typedef struct pfgOffsetEntry
{
	pfgStmtKey	key;			/* must be first */
	int64		calls;			/* executions with offset >= threshold */
	double		total_ms;
	int64		max_offset;
	int64		sum_offset;		/* rows read and thrown away */
	int64		rows_returned;
	TimestampTz last_seen;
} pfgOffsetEntry;

typedef struct pfgPlanShared
{
	pg_atomic_uint32 armed_gen; /* bumped when the armed set changes */
	pfgSlowEntry slow[PFG_MAX_SLOW];
} pfgPlanShared;

/* A finding found by one plan walk, before it goes to shared memory. */
typedef struct pfgFound
{
	int32		code;
	Oid			relid;
	int64		value;
	char		node[PFG_NODE_LEN];
	char		relation[PFG_REL_LEN];
	char		detail[PFG_DETAIL_LEN];
	char		suggestion[PFG_SUGGEST_LEN];
} pfgFound;

#define PFG_MAX_FOUND	16		/* findings kept from one plan walk */

typedef struct pfgWalk
{
	PlannedStmt *pstmt;
	bool		analyzed;		/* nodes carry instrumentation */
	bool		early_stop;		/* below a node that may stop its input early */
	bool		mis_seen;		/* a misestimate was reported in the subtree */
	int			nfound;
	pfgFound	found[PFG_MAX_FOUND];
} pfgWalk;

/* Backend-local cache of armed fingerprints. */
typedef struct pfgArmedSlot
{
	uint64		queryid;
	Oid			dbid;
	int32		idx;			/* slot in pfgPlanShared.slow, -1 = empty */
} pfgArmedSlot;

/*---- local state ----*/
static pfgPlanShared *plan_shared = NULL;
static HTAB *findings_htab = NULL;
static HTAB *offsets_htab = NULL;
static LWLock *slow_lock = NULL;
static LWLock *findings_lock = NULL;
static LWLock *offsets_lock = NULL;

static uint32 armed_gen_seen = 0;	/* shared generation starts at 1 */
static int	armed_count = 0;
static pfgArmedSlot armed_cache[PFG_ARMED_CACHE];

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(perfguard_slow_queries);
PG_FUNCTION_INFO_V1(perfguard_plan_findings);
PG_FUNCTION_INFO_V1(perfguard_offsets);
PG_FUNCTION_INFO_V1(perfguard_keyset_suggestion);

/*---- static functions ----*/
static void plan_shmem_request(void);
static void plan_shmem_startup(void);
static Size plan_memsize(void);
static void armed_refresh(uint32 gen);
static int	slow_find(const pfgStmtKey *key);
static void plan_sample(QueryDesc *qd, const pfgStmtKey *key, double ms,
						bool slow);
static void record_offset(const pfgStmtKey *key, int64 offset, int64 rows,
						  double ms);
static void record_unbounded(QueryDesc *qd, const pfgStmtKey *key,
							 int64 rows, double ms);
static void record_findings(const pfgStmtKey *key, pfgFound *found, int n,
							double ms);
static bool plan_walker(PlanState *ps, void *context);
static const char *node_name(PlanState *ps);
static Oid	scan_relid(PlannedStmt *pstmt, Plan *plan);
static Oid	first_scan_relid(PlannedStmt *pstmt, Plan *plan, Plan **scan);
static void scan_columns(PlannedStmt *pstmt, Plan *plan, StringInfo buf,
						 int *ncols);
static char *qualified_name(Oid relid);
static bool text_is_cursor(QueryDesc *qd);

/*
 * pfg_plan_insights_init
 *		Install this module's shared-memory hooks.  Called from _PG_init when
 *		the library is being preloaded.
 */
void
pfg_plan_insights_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = plan_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = plan_shmem_startup;
}

static Size
plan_memsize(void)
{
	Size		size = MAXALIGN(sizeof(pfgPlanShared));

	size = add_size(size, hash_estimate_size(PFG_MAX_FINDINGS,
											 sizeof(pfgPlanFinding)));
	size = add_size(size, hash_estimate_size(PFG_MAX_OFFSETS,
											 sizeof(pfgOffsetEntry)));
	return size;
}

static void
plan_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(plan_memsize());
	RequestNamedLWLockTranche("perfguard_plans", 3);
}

/*
 * plan_shmem_startup
 *		Create or attach to the slow table and the two shared hashes.
 */
static void
plan_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;
	LWLockPadded *locks;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	plan_shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	plan_shared = ShmemInitStruct("perfguard_plans", sizeof(pfgPlanShared),
								  &found);
	if (!found)
	{
		memset(plan_shared, 0, sizeof(pfgPlanShared));
		pg_atomic_init_u32(&plan_shared->armed_gen, 1);
	}
	locks = GetNamedLWLockTranche("perfguard_plans");
	slow_lock = &locks[0].lock;
	findings_lock = &locks[1].lock;
	offsets_lock = &locks[2].lock;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pfgPlanFindingKey);
	info.entrysize = sizeof(pfgPlanFinding);
	findings_htab = ShmemInitHash("perfguard plan findings",
								  PFG_MAX_FINDINGS, PFG_MAX_FINDINGS,
								  &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pfgStmtKey);
	info.entrysize = sizeof(pfgOffsetEntry);
	offsets_htab = ShmemInitHash("perfguard offsets",
								 PFG_MAX_OFFSETS, PFG_MAX_OFFSETS,
								 &info, HASH_ELEM | HASH_BLOBS);

	LWLockRelease(AddinShmemInitLock);
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
 *		Rebuild the backend-local cache of armed fingerprints.  Takes the
 *		slow-table lock in shared mode.
 */
static void
armed_refresh(uint32 gen)
{
	int			i;

	for (i = 0; i < PFG_ARMED_CACHE; i++)
		armed_cache[i].idx = -1;
	armed_count = 0;

	LWLockAcquire(slow_lock, LW_SHARED);
	for (i = 0; i < PFG_MAX_SLOW; i++)
	{
		pfgSlowEntry *e = &plan_shared->slow[i];
		uint32		h;

		if (!e->inuse || e->budget <= 0)
			continue;
		h = armed_hash(e->key.queryid, e->key.dbid);
		while (armed_cache[h].idx >= 0)
			h = (h + 1) & (PFG_ARMED_CACHE - 1);
		armed_cache[h].queryid = e->key.queryid;
		armed_cache[h].dbid = e->key.dbid;
		armed_cache[h].idx = i;
		armed_count++;
	}
	LWLockRelease(slow_lock);
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

	if (!track || plan_shared == NULL)
		return;
	gen = pg_atomic_read_u32(&plan_shared->armed_gen);
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

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	{
		pfgSlowEntry *e = &plan_shared->slow[idx];

		if (e->inuse && e->budget > 0 && e->key.queryid == queryid &&
			e->key.dbid == MyDatabaseId)
		{
			claimed = true;
			if (--e->budget == 0)
				pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
	}
	LWLockRelease(slow_lock);

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

	if (plan_shared == NULL || ps == NULL)
		return;

	if (IsA(ps, LimitState))
	{
		int64		offset = ((LimitState *) ps)->offset;

		if (offset >= pfg_offset_threshold)
			record_offset(key, offset, rows, ms);
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
 * slow_find
 *		Index of the slow entry for "key", or -1.  Caller holds slow_lock.
 */
static int
slow_find(const pfgStmtKey *key)
{
	int			i;

	for (i = 0; i < PFG_MAX_SLOW; i++)
	{
		pfgSlowEntry *e = &plan_shared->slow[i];

		if (e->inuse && e->key.queryid == key->queryid &&
			e->key.userid == key->userid && e->key.dbid == key->dbid &&
			e->key.toplevel == key->toplevel)
			return i;
	}
	return -1;
}

/*
 * slow_victim
 *		A free slot, else the least recently seen one.  Caller holds slow_lock
 *		exclusively.
 */
static int
slow_victim(void)
{
	int			i;
	int			victim = 0;

	for (i = 0; i < PFG_MAX_SLOW; i++)
	{
		if (!plan_shared->slow[i].inuse)
			return i;
		if (plan_shared->slow[i].last_seen < plan_shared->slow[victim].last_seen)
			victim = i;
	}
	return victim;
}

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
 * Phases: (1) shared lock, decide whether the plan text is needed; (2) no
 * lock, in a temporary memory context inside PG_TRY: walk the plan and print
 * it; (3) exclusive lock: insert or update the entry, copy the text.
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
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			idx;

	LWLockAcquire(slow_lock, LW_SHARED);
	idx = slow_find(key);
	found = (idx >= 0);
	if (found)
	{
		kept_analyzed = plan_shared->slow[idx].plan_analyzed;
		kept_ms = plan_shared->slow[idx].plan_ms;
	}
	LWLockRelease(slow_lock);

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
		plan_walker(qd->planstate, w);
		walk = w;
		if (need_plan)
			text = plan_text(qd, analyzed);
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

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	idx = slow_find(key);
	if (idx < 0)
	{
		pfgSlowEntry *e;

		if (!slow)
		{
			/* evicted meanwhile and this one is fast: drop it */
			LWLockRelease(slow_lock);
			MemoryContextDelete(tmpcxt);
			return;
		}
		idx = slow_victim();
		e = &plan_shared->slow[idx];
		if (e->inuse)
		{
			pfg_store_count_dropped_event();
			if (e->budget > 0)
				pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
		memset(e, 0, offsetof(pfgSlowEntry, plan));
		e->plan[0] = '\0';
		e->inuse = true;
		e->key = *key;
		e->first_seen = now;
		e->plan_ms = -1;
		/* arm: the next executions are instrumented */
		e->last_armed = now;
		if (!analyzed)
		{
			e->budget = PFG_SAMPLE_BUDGET;
			pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
	}
	{
		pfgSlowEntry *e = &plan_shared->slow[idx];

		if (slow)
		{
			e->slow_calls++;
			e->slow_total_ms += ms;
			if (ms > e->slow_max_ms)
				e->slow_max_ms = ms;
		}
		if (analyzed)
			e->samples++;
		e->last_seen = now;

		if (text != NULL &&
			(e->plan_ms < 0 ||
			 (analyzed && (!e->plan_analyzed || ms > e->plan_ms)) ||
			 (!analyzed && !e->plan_analyzed && ms > e->plan_ms)))
		{
			int			len = strlen(text);

			/* cut between characters: the plan must stay valid text */
			if (len > PFG_PLAN_LEN - 1)
				len = pg_mbcliplen(text, len, PFG_PLAN_LEN - 1);

			memcpy(e->plan, text, len);
			e->plan[len] = '\0';
			e->plan_len = len;
			e->plan_ms = ms;
			e->plan_analyzed = analyzed;
		}

		/* still slow without a fresh sample for a while: sample once more */
		if (slow && !analyzed && e->budget <= 0 &&
			TimestampDifferenceExceeds(e->last_armed, now,
									   PFG_REARM_SECS * 1000))
		{
			e->budget = 1;
			e->last_armed = now;
			pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
	}
	LWLockRelease(slow_lock);

	if (walk->nfound > 0)
		record_findings(key, walk->found, walk->nfound, ms);
	MemoryContextDelete(tmpcxt);
}

/*---- plan findings ----*/

/*
 * findings_make_room
 *		Evict the least recently seen finding when the table is full.  Caller
 *		holds findings_lock exclusively.
 */
static void
findings_make_room(void)
{
	HASH_SEQ_STATUS status;
	pfgPlanFinding *f;
	pfgPlanFinding *victim = NULL;

	if (hash_get_num_entries(findings_htab) < PFG_MAX_FINDINGS)
		return;
	hash_seq_init(&status, findings_htab);
	while ((f = hash_seq_search(&status)) != NULL)
		if (victim == NULL || f->last_seen < victim->last_seen)
			victim = f;
	if (victim)
	{
		pfgPlanFindingKey k = victim->key;

		hash_search(findings_htab, &k, HASH_REMOVE, NULL);
		pfg_store_count_dropped_event();
	}
}

/*
 * clip_partial_char
 *		Drop a multibyte character that a length-limited snprintf cut in two
 *		at the end of s.
 */
static void
clip_partial_char(char *s)
{
	int			n = strlen(s);

	s[pg_mbcliplen(s, n, n)] = '\0';
}

/*
 * record_findings
 *		Add the findings of one execution to the shared table.  Text was
 *		built before; this only copies.
 */
static void
record_findings(const pfgStmtKey *key, pfgFound *found, int n, double ms)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			i;

	/* texts cut by snprintf must not end in half a character */
	for (i = 0; i < n; i++)
	{
		clip_partial_char(found[i].detail);
		clip_partial_char(found[i].suggestion);
	}

	LWLockAcquire(findings_lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		pfgFound   *x = &found[i];
		pfgPlanFindingKey k;
		pfgPlanFinding *f;
		bool		isnew;

		memset(&k, 0, sizeof(k));
		k.stmt = *key;
		k.code = x->code;
		k.relid = x->relid;
		f = hash_search(findings_htab, &k, HASH_FIND, NULL);
		if (f == NULL)
		{
			findings_make_room();
			f = hash_search(findings_htab, &k, HASH_ENTER_NULL, &isnew);
			if (f == NULL)
			{
				pfg_store_count_dropped_event();
				continue;
			}
			memset((char *) f + sizeof(k), 0, sizeof(*f) - sizeof(k));
		}
		f->occurrences++;
		f->total_ms += ms;
		f->value_sum += x->value;
		if (x->value >= f->value_max || f->detail[0] == '\0')
		{
			/* the worst case seen gives the text */
			f->value_max = Max(f->value_max, x->value);
			strlcpy(f->node, x->node, PFG_NODE_LEN);
			strlcpy(f->relation, x->relation, PFG_REL_LEN);
			strlcpy(f->detail, x->detail, PFG_DETAIL_LEN);
			strlcpy(f->suggestion, x->suggestion, PFG_SUGGEST_LEN);
		}
		f->last_seen = now;
	}
	LWLockRelease(findings_lock);
}

/*
 * found_add
 *		Reserve a finding of this walk; merges repeats of the same code and
 *		relation (e.g. two scans of one table).  NULL when it is a repeat or
 *		the walk is full.
 */
static pfgFound *
found_add(pfgWalk *w, int code, Oid relid, int64 value, PlanState *ps)
{
	pfgFound   *x;
	int			i;

	for (i = 0; i < w->nfound; i++)
	{
		if (w->found[i].code == code && w->found[i].relid == relid)
		{
			w->found[i].value = Max(w->found[i].value, value);
			return NULL;
		}
	}
	if (w->nfound >= PFG_MAX_FOUND)
		return NULL;
	x = &w->found[w->nfound++];
	memset(x, 0, sizeof(*x));
	x->code = code;
	x->relid = relid;
	x->value = value;
	strlcpy(x->node, node_name(ps), PFG_NODE_LEN);
	if (OidIsValid(relid))
	{
		char	   *rel = get_rel_name(relid);

		if (rel)
			strlcpy(x->relation, rel, PFG_REL_LEN);
	}
	return x;
}

static void
end_loop(PlanState *ps)
{
	Instrumentation *instr = ps->instrument;

	/* InstrEndLoop refuses a node that is still running a loop */
	if (instr && instr->running && INSTR_TIME_IS_ZERO(instr->starttime))
		InstrEndLoop(instr);
}

/* A node below which input may be cut short, so fewer rows are normal. */
static bool
stops_early(PlanState *ps)
{
	switch (nodeTag(ps))
	{
		case T_LimitState:
		case T_MergeJoinState:
			return true;
		case T_NestLoopState:
		case T_HashJoinState:
			{
				JoinType	jt = ((JoinState *) ps)->jointype;

				return jt == JOIN_SEMI || jt == JOIN_ANTI ||
					((JoinState *) ps)->single_match;
			}
		default:
			return false;
	}
}

static void
check_seq_scan(pfgWalk *w, PlanState *ps)
{
	Instrumentation *instr = ps->instrument;
	double		read,
				removed;
	Oid			relid;
	pfgFound   *x;
	StringInfoData cols;
	int			ncols = 0;
	char	   *qname;

	if (!w->analyzed || instr == NULL || instr->nloops <= 0 ||
		ps->plan->qual == NIL)
		return;
	removed = instr->nfiltered1;
	read = instr->ntuples + removed;
	if (read / instr->nloops < PFG_SEQSCAN_MIN_ROWS ||
		removed / read < PFG_SEQSCAN_FILTERED)
		return;
	relid = scan_relid(w->pstmt, ps->plan);
	x = found_add(w, PFG_PLAN_SEQ_SCAN_LARGE, relid, (int64) removed, ps);
	if (x == NULL)
		return;
	initStringInfo(&cols);
	scan_columns(w->pstmt, ps->plan, &cols, &ncols);
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "Seq Scan on %s read %.0f rows per loop and its filter removed %.1f%% of them%s%s",
			 x->relation[0] ? x->relation : "a table",
			 read / instr->nloops, 100.0 * removed / read,
			 ncols > 0 ? "; filtered columns: " : "", cols.data);
	qname = OidIsValid(relid) ? qualified_name(relid) : NULL;
	if (ncols > 0 && qname)
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "CREATE INDEX CONCURRENTLY ON %s (%s); an index on the filtered column%s lets the planner read only the matching rows (equality columns first; a partial index WHERE ... if the filter is always the same) / Django: Meta.indexes = [models.Index(fields=[...])] or db_index=True / Rails: add_index",
				 qname, cols.data, ncols > 1 ? "s" : "");
	else
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "index the column(s) of the filter so the planner can read only the matching rows instead of the whole table (see perfguard.index_advice)");
}

static void
check_nested_loop(pfgWalk *w, PlanState *ps)
{
	PlanState  *inner = innerPlanState(ps);
	Plan	   *scan = NULL;
	Oid			relid;
	pfgFound   *x;
	StringInfoData cols;
	int			ncols = 0;
	char	   *qname;

	if (!w->analyzed || inner == NULL || inner->instrument == NULL ||
		inner->instrument->nloops < PFG_NESTLOOP_MIN_LOOPS)
		return;
	relid = first_scan_relid(w->pstmt, inner->plan, &scan);
	x = found_add(w, PFG_PLAN_NESTED_LOOP_MANY, relid,
				  (int64) inner->instrument->nloops, ps);
	if (x == NULL)
		return;
	initStringInfo(&cols);
	if (scan)
		scan_columns(w->pstmt, scan, &cols, &ncols);
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "the inner side (%s%s%s) ran %.0f times, %.1f rows per run",
			 node_name(inner), x->relation[0] ? " on " : "", x->relation,
			 inner->instrument->nloops,
			 inner->instrument->ntuples / inner->instrument->nloops);
	qname = OidIsValid(relid) ? qualified_name(relid) : NULL;
	if (scan && IsA(scan, SeqScan) && ncols > 0 && qname)
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "one scan of the inner side per outer row (an N+1 inside the database), and each one reads the whole table: CREATE INDEX CONCURRENTLY ON %s (%s) on the inner join key, or let the planner use a hash join (ANALYZE both tables; check work_mem and enable_hashjoin), or rewrite the correlated part as a set-based JOIN",
				 qname, cols.data);
	else
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "one lookup of the inner side per outer row (an N+1 inside the database): if the outer side is larger than estimated, ANALYZE it so the planner can pick a hash join; rewrite correlated subqueries as a set-based JOIN; make sure the inner join key%s%s%s is indexed",
				 ncols > 0 ? " (" : "", cols.data, ncols > 0 ? ")" : "");
}

static void
check_sort(pfgWalk *w, PlanState *ps)
{
	SortState  *ss = (SortState *) ps;
	Sort	   *plan = (Sort *) ps->plan;
	bool		disk = false;
	int64		space = 0;
	pfgFound   *x;
	StringInfoData keys;
	Plan	   *child = outerPlan(ps->plan);
	int			i;

	if (ss->sort_Done && ss->tuplesortstate != NULL)
	{
		TuplesortInstrumentation stats;

		tuplesort_get_stats((Tuplesortstate *) ss->tuplesortstate, &stats);
		if (stats.spaceType == SORT_SPACE_TYPE_DISK)
		{
			disk = true;
			space = stats.spaceUsed;
		}
	}
	if (ss->shared_info)
	{
		for (i = 0; i < ss->shared_info->num_workers; i++)
		{
			TuplesortInstrumentation *si = &ss->shared_info->sinstrument[i];

			if (si->sortMethod != SORT_TYPE_STILL_IN_PROGRESS &&
				si->spaceType == SORT_SPACE_TYPE_DISK)
			{
				disk = true;
				space = Max(space, si->spaceUsed);
			}
		}
	}
	if (!disk)
		return;
	x = found_add(w, PFG_PLAN_SORT_SPILL, InvalidOid, space, ps);
	if (x == NULL)
		return;

	/* sort keys that are plain columns of a base relation */
	initStringInfo(&keys);
	for (i = 0; child && i < plan->numCols; i++)
	{
		TargetEntry *tle = get_tle_by_resno(child->targetlist,
											plan->sortColIdx[i]);
		Var		   *var;
		RangeTblEntry *rte;
		char	   *att;

		if (tle == NULL || !IsA(tle->expr, Var))
			continue;
		var = (Var *) tle->expr;
		if (IS_SPECIAL_VARNO(var->varno) || var->varattno <= 0 ||
			var->varno > list_length(w->pstmt->rtable))
			continue;
		rte = rt_fetch(var->varno, w->pstmt->rtable);
		if (rte->rtekind != RTE_RELATION)
			continue;
		att = get_attname(rte->relid, var->varattno, true);
		if (att == NULL)
			continue;
		if (keys.len > 0)
			appendStringInfoString(&keys, ", ");
		appendStringInfoString(&keys, quote_identifier(att));
	}
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "sort spilled to disk (%lld kB) with work_mem = %d kB%s%s",
			 (long long) space, work_mem,
			 keys.len > 0 ? "; sort key: " : "", keys.data);
	snprintf(x->suggestion, PFG_SUGGEST_LEN,
			 "raise work_mem for this query (SET LOCAL work_mem = '%lldMB' in its transaction) or create an index on the ORDER BY column%s%s%s so rows come out already sorted (with a LIMIT, only the first rows are read)",
			 (long long) Max(space * 2 / 1024 + 1, 4),
			 keys.len > 0 ? "s (" : "s", keys.data, keys.len > 0 ? ")" : "");
}

static void
check_hash(pfgWalk *w, PlanState *ps)
{
	HashState  *hs = (HashState *) ps;
	HashInstrumentation hi;
	Plan	   *scan = NULL;
	Oid			relid;
	pfgFound   *x;
	int			i;

	memset(&hi, 0, sizeof(hi));
	if (hs->hinstrument)
		hi = *hs->hinstrument;
	if (hs->hashtable)
		ExecHashAccumInstrumentation(&hi, hs->hashtable);
	if (hs->shared_info)
	{
		for (i = 0; i < hs->shared_info->num_workers; i++)
		{
			HashInstrumentation *wi = &hs->shared_info->hinstrument[i];

			hi.nbatch = Max(hi.nbatch, wi->nbatch);
			hi.nbatch_original = Max(hi.nbatch_original, wi->nbatch_original);
			hi.space_peak = Max(hi.space_peak, wi->space_peak);
		}
	}
	if (hi.nbatch <= 1)
		return;
	relid = first_scan_relid(w->pstmt, ps->plan, &scan);
	x = found_add(w, PFG_PLAN_HASH_BATCHES, relid, hi.nbatch, ps);
	if (x == NULL)
		return;
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "hash table%s%s split into %d batches (planned %d), peak memory %lld kB, work_mem = %d kB",
			 x->relation[0] ? " of " : "", x->relation,
			 hi.nbatch, hi.nbatch_original,
			 (long long) ((hi.space_peak + 1023) / 1024), work_mem);
	snprintf(x->suggestion, PFG_SUGGEST_LEN,
			 "the hashed side of the join did not fit in work_mem (x hash_mem_multiplier), so both sides were written to temporary files in batches: raise work_mem for this query (SET LOCAL work_mem = '%lldMB'), or hash fewer rows and columns (filter earlier, select only the needed columns)",
			 (long long) Max((int64) hi.space_peak * hi.nbatch / (1024 * 1024) + 1, 4));
}

static bool
check_misestimate(pfgWalk *w, PlanState *ps)
{
	Instrumentation *instr = ps->instrument;
	double		actual,
				est;
	bool		under;
	Oid			relid;
	pfgFound   *x;
	StringInfoData cols;
	int			ncols = 0;
	char	   *qname;

	if (!w->analyzed || instr == NULL || instr->nloops <= 0)
		return false;
	actual = instr->ntuples / instr->nloops;
	est = ps->plan->plan_rows;
	if (Max(actual, est) < PFG_MISESTIMATE_MIN_ROWS)
		return false;
	if (actual >= est * PFG_MISESTIMATE_FACTOR)
		under = true;
	else if (!w->early_stop && est >= actual * PFG_MISESTIMATE_FACTOR)
		under = false;
	else
		return false;

	relid = scan_relid(w->pstmt, ps->plan);
	x = found_add(w, PFG_PLAN_MISESTIMATE, relid,
				  (int64) Max(actual, est), ps);
	if (x == NULL)
		return true;
	initStringInfo(&cols);
	scan_columns(w->pstmt, ps->plan, &cols, &ncols);
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "%s%s%s: estimated %.0f rows, actual %.0f per loop (%.0fx %s)",
			 x->node, x->relation[0] ? " on " : "", x->relation, est, actual,
			 under ? actual / Max(est, 1) : est / Max(actual, 1),
			 under ? "more" : "fewer");
	qname = OidIsValid(relid) ? qualified_name(relid) : NULL;
	if (qname && ncols >= 2)
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "ANALYZE %s; if the filtered columns are correlated, give the planner extended statistics: CREATE STATISTICS ON %s FROM %s; ANALYZE %s; a wrong row estimate leads to wrong join methods (nested loops over many rows) and memory sizing",
				 qname, cols.data, qname, qname);
	else if (qname)
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "ANALYZE %s (autovacuum may lag behind bulk loads); for skewed columns raise the statistics target (ALTER TABLE %s ALTER COLUMN ... SET STATISTICS 1000); for correlated columns CREATE STATISTICS (dependencies, mcv); a wrong row estimate leads to wrong join methods and memory sizing",
				 qname, qname);
	else
		snprintf(x->suggestion, PFG_SUGGEST_LEN,
				 "the join's row estimate is off: ANALYZE the joined tables, and add extended statistics (CREATE STATISTICS) on correlated columns; a wrong row estimate leads to wrong join methods and memory sizing");
	return true;
}

/*
 * plan_walker
 *		Post-order walk of the executed PlanState tree (children first, so
 *		their loops are closed and a misestimate is reported at the deepest
 *		node only).  Runs in a temporary context, outside any lock; may ERROR
 *		(catalog lookups of names), caught by the caller.
 */
static bool
plan_walker(PlanState *ps, void *context)
{
	pfgWalk    *w = (pfgWalk *) context;
	bool		saved_early = w->early_stop;
	bool		saved_mis = w->mis_seen;
	bool		child_mis;

	if (ps == NULL)
		return false;
	check_stack_depth();

	if (stops_early(ps))
		w->early_stop = true;
	w->mis_seen = false;
	planstate_tree_walker(ps, plan_walker, context);
	child_mis = w->mis_seen;
	w->early_stop = saved_early;

	end_loop(ps);
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
			check_seq_scan(w, ps);
			break;
		case T_NestLoopState:
			check_nested_loop(w, ps);
			break;
		case T_SortState:
			check_sort(w, ps);
			break;
		case T_HashState:
			check_hash(w, ps);
			break;
		default:
			break;
	}
	if (!child_mis && !IsA(ps, HashState) && !IsA(ps, MaterialState))
		child_mis = check_misestimate(w, ps);
	w->mis_seen = saved_mis || child_mis;
	return false;
}

/*---- plan helpers ----*/

static const char *
node_name(PlanState *ps)
{
	switch (nodeTag(ps))
	{
		case T_ResultState:
			return "Result";
		case T_ProjectSetState:
			return "ProjectSet";
		case T_ModifyTableState:
			return "ModifyTable";
		case T_AppendState:
			return "Append";
		case T_MergeAppendState:
			return "Merge Append";
		case T_RecursiveUnionState:
			return "Recursive Union";
		case T_BitmapAndState:
			return "BitmapAnd";
		case T_BitmapOrState:
			return "BitmapOr";
		case T_SeqScanState:
			return "Seq Scan";
		case T_SampleScanState:
			return "Sample Scan";
		case T_IndexScanState:
			return "Index Scan";
		case T_IndexOnlyScanState:
			return "Index Only Scan";
		case T_BitmapIndexScanState:
			return "Bitmap Index Scan";
		case T_BitmapHeapScanState:
			return "Bitmap Heap Scan";
		case T_TidScanState:
		case T_TidRangeScanState:
			return "Tid Scan";
		case T_SubqueryScanState:
			return "Subquery Scan";
		case T_FunctionScanState:
			return "Function Scan";
		case T_ValuesScanState:
			return "Values Scan";
		case T_CteScanState:
			return "CTE Scan";
		case T_WorkTableScanState:
			return "WorkTable Scan";
		case T_ForeignScanState:
			return "Foreign Scan";
		case T_CustomScanState:
			return "Custom Scan";
		case T_NestLoopState:
			return "Nested Loop";
		case T_MergeJoinState:
			return "Merge Join";
		case T_HashJoinState:
			return "Hash Join";
		case T_MaterialState:
			return "Materialize";
		case T_MemoizeState:
			return "Memoize";
		case T_SortState:
			return "Sort";
		case T_IncrementalSortState:
			return "Incremental Sort";
		case T_GroupState:
			return "Group";
		case T_AggState:
			return "Aggregate";
		case T_WindowAggState:
			return "WindowAgg";
		case T_UniqueState:
			return "Unique";
		case T_GatherState:
			return "Gather";
		case T_GatherMergeState:
			return "Gather Merge";
		case T_HashState:
			return "Hash";
		case T_SetOpState:
			return "SetOp";
		case T_LockRowsState:
			return "LockRows";
		case T_LimitState:
			return "Limit";
		default:
			return "Plan";
	}
}

/* The relation a scan node reads, or InvalidOid. */
static Oid
scan_relid(PlannedStmt *pstmt, Plan *plan)
{
	Index		scanrelid;
	RangeTblEntry *rte;

	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			break;
		default:
			return InvalidOid;
	}
	if (scanrelid == 0 || scanrelid > list_length(pstmt->rtable))
		return InvalidOid;
	rte = rt_fetch(scanrelid, pstmt->rtable);
	return rte->rtekind == RTE_RELATION ? rte->relid : InvalidOid;
}

/*
 * first_scan_relid
 *		The relation of the first base-table scan at or below "plan" (left
 *		side first, through Materialize, Memoize, Hash, Sort, ...).
 */
static Oid
first_scan_relid(PlannedStmt *pstmt, Plan *plan, Plan **scan)
{
	Oid			relid;

	if (plan == NULL)
		return InvalidOid;
	relid = scan_relid(pstmt, plan);
	if (OidIsValid(relid))
	{
		*scan = plan;
		return relid;
	}
	if (IsA(plan, BitmapHeapScan) || outerPlan(plan) == NULL)
		return InvalidOid;
	relid = first_scan_relid(pstmt, outerPlan(plan), scan);
	if (!OidIsValid(relid) && innerPlan(plan))
		relid = first_scan_relid(pstmt, innerPlan(plan), scan);
	return relid;
}

typedef struct pfgColWalk
{
	Index		varno;
	Bitmapset  *seen;
	List	   *order;			/* attnos in order of appearance */
} pfgColWalk;

static bool
columns_walker(Node *node, pfgColWalk *c)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varno == c->varno && v->varlevelsup == 0 && v->varattno > 0 &&
			!bms_is_member(v->varattno, c->seen))
		{
			c->seen = bms_add_member(c->seen, v->varattno);
			c->order = lappend_int(c->order, v->varattno);
		}
		return false;
	}
	return expression_tree_walker(node, columns_walker, (void *) c);
}

/*
 * scan_columns
 *		Append to buf the quoted names of the columns of a scan's relation used
 *		in its filter and index conditions, in order of appearance.
 */
static void
scan_columns(PlannedStmt *pstmt, Plan *plan, StringInfo buf, int *ncols)
{
	pfgColWalk	c;
	Oid			relid = scan_relid(pstmt, plan);
	ListCell   *lc;

	*ncols = 0;
	if (!OidIsValid(relid))
		return;
	memset(&c, 0, sizeof(c));
	c.varno = ((Scan *) plan)->scanrelid;
	if (IsA(plan, IndexScan))
		columns_walker((Node *) ((IndexScan *) plan)->indexqualorig, &c);
	else if (IsA(plan, BitmapHeapScan))
		columns_walker((Node *) ((BitmapHeapScan *) plan)->bitmapqualorig, &c);
	columns_walker((Node *) plan->qual, &c);
	foreach(lc, c.order)
	{
		char	   *att = get_attname(relid, (AttrNumber) lfirst_int(lc), true);

		if (att == NULL)
			continue;
		if (*ncols > 0)
			appendStringInfoString(buf, ", ");
		appendStringInfoString(buf, quote_identifier(att));
		(*ncols)++;
	}
}

static char *
qualified_name(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp;

	if (rel == NULL)
		return NULL;
	nsp = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nsp, rel);
}

/*---- unbounded results and deep offsets ----*/

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
	strlcpy(x.node, node_name(qd->planstate), PFG_NODE_LEN);
	snprintf(x.detail, PFG_DETAIL_LEN,
			 "a SELECT without LIMIT returned %lld rows (perfguard.unbounded_rows = %d)",
			 (long long) rows, pfg_unbounded_rows);
	strlcpy(x.suggestion,
			"paginate: fetch one page at a time with LIMIT and a keyset predicate (WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT n) / Django: Paginator or DRF CursorPagination, slice the queryset (qs[:n]), .iterator(chunk_size=2000) for batch jobs, .values_list()/.only() to fetch fewer columns / Rails: .limit(n), find_each/in_batches for batch jobs; aggregate in SQL (count, sum, exists) instead of loading rows to count them",
			PFG_SUGGEST_LEN);

	/* the main relation, named only when the finding is new */
	PG_TRY();
	{
		bool		exists;
		pfgPlanFindingKey k;

		memset(&k, 0, sizeof(k));
		k.stmt = *key;
		k.code = PFG_PLAN_UNBOUNDED_RESULT;
		LWLockAcquire(findings_lock, LW_SHARED);
		exists = hash_search(findings_htab, &k, HASH_FIND, NULL) != NULL;
		LWLockRelease(findings_lock);
		if (!exists)
		{
			Oid			relid = first_scan_relid(qd->plannedstmt,
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
	record_findings(key, &x, 1, ms);
}

/*
 * record_offset
 *		An execution whose top Limit skipped "offset" rows.
 */
static void
record_offset(const pfgStmtKey *key, int64 offset, int64 rows, double ms)
{
	pfgOffsetEntry *e;
	bool		isnew;

	LWLockAcquire(offsets_lock, LW_EXCLUSIVE);
	e = hash_search(offsets_htab, key, HASH_FIND, NULL);
	if (e == NULL)
	{
		if (hash_get_num_entries(offsets_htab) >= PFG_MAX_OFFSETS)
		{
			HASH_SEQ_STATUS status;
			pfgOffsetEntry *o;
			pfgOffsetEntry *victim = NULL;

			hash_seq_init(&status, offsets_htab);
			while ((o = hash_seq_search(&status)) != NULL)
				if (victim == NULL || o->last_seen < victim->last_seen)
					victim = o;
			if (victim)
			{
				pfgStmtKey	k = victim->key;

				hash_search(offsets_htab, &k, HASH_REMOVE, NULL);
				pfg_store_count_dropped_event();
			}
		}
		e = hash_search(offsets_htab, key, HASH_ENTER_NULL, &isnew);
		if (e == NULL)
		{
			LWLockRelease(offsets_lock);
			pfg_store_count_dropped_event();
			return;
		}
		memset((char *) e + sizeof(pfgStmtKey), 0,
			   sizeof(*e) - sizeof(pfgStmtKey));
	}
	e->calls++;
	e->total_ms += ms;
	/* saturate: OFFSET 9223372036854775807 twice must not wrap around */
	if (pg_add_s64_overflow(e->sum_offset, offset, &e->sum_offset))
		e->sum_offset = PG_INT64_MAX;
	e->max_offset = Max(e->max_offset, offset);
	e->rows_returned += rows;
	e->last_seen = GetCurrentStatementStartTimestamp();
	LWLockRelease(offsets_lock);
}

/*
 * pfg_plan_insights_reset
 *		Clear the slow table, the findings and the offsets (perfguard.reset).
 */
void
pfg_plan_insights_reset(void)
{
	HASH_SEQ_STATUS status;
	void	   *entry;

	if (plan_shared == NULL)
		return;

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	memset(plan_shared->slow, 0, sizeof(plan_shared->slow));
	pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
	LWLockRelease(slow_lock);

	LWLockAcquire(findings_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, findings_htab);
	while ((entry = hash_seq_search(&status)) != NULL)
		hash_search(findings_htab, entry, HASH_REMOVE, NULL);
	LWLockRelease(findings_lock);

	LWLockAcquire(offsets_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, offsets_htab);
	while ((entry = hash_seq_search(&status)) != NULL)
		hash_search(offsets_htab, entry, HASH_REMOVE, NULL);
	LWLockRelease(offsets_lock);
}

/*---- SQL-callable functions behind the views ----*/

static bool
may_see(Oid userid)
{
	return userid == GetUserId() ||
		has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/*
 * perfguard_slow_queries
 *		Rows of perfguard._slow_queries(): the slow table.  Plans only for
 *		those who may see the statement's text.
 */
Datum
perfguard_slow_queries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgSlowEntry *copy;
	int			n = 0;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	/* copy under the lock, build tuples outside it */
	copy = palloc(sizeof(pfgSlowEntry) * PFG_MAX_SLOW);
	LWLockAcquire(slow_lock, LW_SHARED);
	for (i = 0; i < PFG_MAX_SLOW; i++)
		if (plan_shared->slow[i].inuse)
			memcpy(&copy[n++], &plan_shared->slow[i], sizeof(pfgSlowEntry));
	LWLockRelease(slow_lock);

	for (i = 0; i < n; i++)
	{
		pfgSlowEntry *e = &copy[i];
		Datum		values[15];
		bool		nulls[15];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		e->plan[PFG_PLAN_LEN - 1] = '\0';
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		values[j++] = BoolGetDatum(e->key.toplevel);
		values[j++] = Int64GetDatum(e->slow_calls);
		values[j++] = Float8GetDatum(e->slow_total_ms);
		values[j++] = Float8GetDatum(e->slow_max_ms);
		values[j++] = Int64GetDatum(e->samples);
		if (e->plan[0] != '\0' && may_see(e->key.userid))
			values[j++] = CStringGetTextDatum(e->plan);
		else
			nulls[j++] = true;
		if (e->plan_ms >= 0)
			values[j++] = Float8GetDatum(e->plan_ms);
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum(e->plan_analyzed);
		values[j++] = BoolGetDatum(e->budget > 0);
		values[j++] = TimestampTzGetDatum(e->first_seen);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		Assert(j == 14);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_plan_findings
 *		Rows of perfguard._plan_findings().
 */
Datum
perfguard_plan_findings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgPlanFinding *copy;
	HASH_SEQ_STATUS status;
	pfgPlanFinding *f;
	int			n = 0;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(pfgPlanFinding) * (PFG_MAX_FINDINGS + 1));
	LWLockAcquire(findings_lock, LW_SHARED);
	hash_seq_init(&status, findings_htab);
	while ((f = hash_seq_search(&status)) != NULL)
	{
		if (n > PFG_MAX_FINDINGS)
		{
			hash_seq_term(&status);
			break;
		}
		memcpy(&copy[n++], f, sizeof(pfgPlanFinding));
	}
	LWLockRelease(findings_lock);

	for (i = 0; i < n; i++)
	{
		pfgPlanFinding *e = &copy[i];
		Datum		values[14];
		bool		nulls[14];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.stmt.userid);
		values[j++] = ObjectIdGetDatum(e->key.stmt.dbid);
		values[j++] = Int64GetDatum((int64) e->key.stmt.queryid);
		values[j++] = BoolGetDatum(e->key.stmt.toplevel);
		if (e->key.code <= 0 || e->key.code >= PFG_PLAN_NCODES)
			continue;
		values[j++] = CStringGetTextDatum(finding_names[e->key.code]);
		values[j++] = CStringGetTextDatum(e->node);
		if (e->relation[0])
			values[j++] = CStringGetTextDatum(e->relation);
		else
			nulls[j++] = true;
		values[j++] = CStringGetTextDatum(e->detail);
		values[j++] = CStringGetTextDatum(e->suggestion);
		values[j++] = Int64GetDatum(e->occurrences);
		values[j++] = Float8GetDatum(e->total_ms);
		values[j++] = Int64GetDatum(e->value_sum);
		values[j++] = Int64GetDatum(e->value_max);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		Assert(j == 14);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_offsets
 *		Rows of perfguard._offsets().
 */
Datum
perfguard_offsets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgOffsetEntry *copy;
	HASH_SEQ_STATUS status;
	pfgOffsetEntry *o;
	int			n = 0;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(pfgOffsetEntry) * (PFG_MAX_OFFSETS + 1));
	LWLockAcquire(offsets_lock, LW_SHARED);
	hash_seq_init(&status, offsets_htab);
	while ((o = hash_seq_search(&status)) != NULL)
	{
		if (n > PFG_MAX_OFFSETS)
		{
			hash_seq_term(&status);
			break;
		}
		memcpy(&copy[n++], o, sizeof(pfgOffsetEntry));
	}
	LWLockRelease(offsets_lock);

	for (i = 0; i < n; i++)
	{
		pfgOffsetEntry *e = &copy[i];
		Datum		values[10];
		bool		nulls[10];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		values[j++] = BoolGetDatum(e->key.toplevel);
		values[j++] = Int64GetDatum(e->calls);
		values[j++] = Float8GetDatum(e->total_ms);
		values[j++] = Int64GetDatum(e->max_offset);
		values[j++] = Int64GetDatum(e->sum_offset);
		values[j++] = Int64GetDatum(e->rows_returned);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*---- keyset suggestion ----*/

typedef struct pfgSortKey
{
	char	   *expr;			/* rendered expression */
	char	   *name;			/* placeholder name */
	bool		column;			/* a plain column reference */
	SortByDir	dir;
	SortByNulls nulls;
} pfgSortKey;

static bool
is_trailing_word(const char *w, int len)
{
	static const char *const words[] = {
		"asc", "desc", "nulls", "first", "last", "limit", "offset", "fetch",
		"next", "rows", "row", "only", "for", "update", "share", "key", "no",
		"nowait", "skip", "locked", "all", "with", "ties", NULL
	};
	int			i;

	for (i = 0; words[i]; i++)
		if ((int) strlen(words[i]) == len && pg_strncasecmp(w, words[i], len) == 0)
			return true;
	return false;
}

/*
 * sort_expr_text
 *		The source text of a sort key from "start" to "end", with trailing
 *		commas, comments, ASC/DESC/NULLS and LIMIT/OFFSET words cut off.
 */
static char *
sort_expr_text(const char *q, int start, int end)
{
	int			len = end - start;

	for (;;)
	{
		int			w;

		while (len > 0 && (isspace((unsigned char) q[start + len - 1]) ||
						   q[start + len - 1] == ',' ||
						   q[start + len - 1] == ';'))
			len--;
		if (len >= 2 && q[start + len - 1] == '/' && q[start + len - 2] == '*')
		{
			int			k = len - 2;

			while (k >= 1 && !(q[start + k - 1] == '/' && q[start + k] == '*'))
				k--;
			if (k < 1)
				break;
			len = k - 1;
			continue;
		}
		w = len;
		while (w > 0 && isalpha((unsigned char) q[start + w - 1]))
			w--;
		if (w > 0 && w < len && !isalnum((unsigned char) q[start + w - 1]) &&
			q[start + w - 1] != '_' && q[start + w - 1] != '"' &&
			is_trailing_word(q + start + w, len - w))
		{
			len = w;
			continue;
		}
		break;
	}
	return pnstrdup(q + start, Max(len, 0));
}

static int
min_location_after(Node *n, int start, int best)
{
	int			loc;

	if (n == NULL)
		return best;
	loc = exprLocation(n);
	if (loc > start && loc < best)
		return loc;
	return best;
}

/*
 * keyset_suggestion
 *		The keyset predicate that replaces OFFSET for a normalized query, from
 *		its ORDER BY.  May ERROR (syntax errors in a truncated text); the
 *		caller catches.
 */
static char *
keyset_suggestion(const char *query)
{
	List	   *raw = raw_parser(query, RAW_PARSE_DEFAULT);
	Node	   *stmt;
	SelectStmt *sel;
	List	   *keys = NIL;
	ListCell   *lc;
	int			i = 0;
	int			nkeys;
	bool		mixed = false;
	bool		using_op = false;
	bool		nulls_given = false;
	bool		all_columns = true;
	StringInfoData order,
				kporder,
				pred,
				cols,
				out;
	pfgSortKey *first = NULL;

	if (list_length(raw) != 1)
		return NULL;
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (IsA(stmt, DeclareCursorStmt))
		stmt = ((DeclareCursorStmt *) stmt)->query;
	if (!IsA(stmt, SelectStmt))
		return NULL;
	sel = (SelectStmt *) stmt;

	if (sel->sortClause == NIL)
		return pstrdup("OFFSET without ORDER BY returns the rows in no defined order, so pages can overlap or skip rows: add an ORDER BY on a unique key and paginate by keyset instead of OFFSET, e.g. WHERE id > $last_id ORDER BY id LIMIT <page size> (the last id of the previous page is the cursor) / Django: qs.order_by('id').filter(id__gt=last_id)[:n] or DRF CursorPagination / Rails: where('id > ?', last_id).order(:id).limit(n)");

	nkeys = list_length(sel->sortClause);
	foreach(lc, sel->sortClause)
	{
		SortBy	   *sb = lfirst_node(SortBy, lc);
		pfgSortKey *k = palloc0(sizeof(pfgSortKey));

		k->dir = sb->sortby_dir;
		k->nulls = sb->sortby_nulls;
		if (IsA(sb->node, ColumnRef))
		{
			ColumnRef  *cr = (ColumnRef *) sb->node;
			StringInfoData e;
			ListCell   *fc;

			initStringInfo(&e);
			foreach(fc, cr->fields)
			{
				Node	   *f = lfirst(fc);

				if (e.len > 0)
					appendStringInfoChar(&e, '.');
				if (IsA(f, String))
					appendStringInfoString(&e, quote_identifier(strVal(f)));
				else
					appendStringInfoChar(&e, '*');
			}
			k->expr = e.data;
			if (IsA(llast(cr->fields), String))
			{
				k->name = pstrdup(strVal(llast(cr->fields)));
				k->column = true;
			}
		}
		else
		{
			int			start = exprLocation(sb->node);
			int			end = strlen(query);

			if (lnext(sel->sortClause, lc))
				end = min_location_after(((SortBy *) lfirst(lnext(sel->sortClause, lc)))->node,
										 start, end);
			end = min_location_after(sel->limitCount, start, end);
			end = min_location_after(sel->limitOffset, start, end);
			if (start < 0)
				k->expr = psprintf("<sort key %d>", i + 1);
			else
				k->expr = sort_expr_text(query, start, end);
		}
		if (k->name == NULL)
			k->name = psprintf("key%d", i + 1);
		if (k->dir == SORTBY_USING)
			using_op = true;
		if (!k->column)
			all_columns = false;
		if (k->nulls != SORTBY_NULLS_DEFAULT)
			nulls_given = true;
		if (first == NULL)
			first = k;
		else if ((first->dir == SORTBY_DESC) != (k->dir == SORTBY_DESC))
			mixed = true;
		keys = lappend(keys, k);
		i++;
	}

	initStringInfo(&order);
	initStringInfo(&kporder);
	initStringInfo(&cols);
	foreach(lc, keys)
	{
		pfgSortKey *k = lfirst(lc);
		const char *dir = (k->dir == SORTBY_DESC) ? " DESC" : "";
		const char *nl = (k->nulls == SORTBY_NULLS_FIRST) ? " NULLS FIRST" :
			(k->nulls == SORTBY_NULLS_LAST) ? " NULLS LAST" : "";

		if (order.len > 0)
		{
			appendStringInfoString(&order, ", ");
			appendStringInfoString(&kporder, ", ");
			appendStringInfoString(&cols, ", ");
		}
		appendStringInfo(&order, "%s%s%s", k->expr, dir, nl);
		/* keyset_predicate takes bare column names */
		appendStringInfo(&kporder, "%s%s%s", quote_identifier(k->name), dir, nl);
		appendStringInfo(&cols, "%s%s", k->expr, mixed ? dir : "");
	}

	initStringInfo(&out);
	if (using_op)
	{
		appendStringInfo(&out,
						 "replace OFFSET with a keyset predicate on the ORDER BY columns (%s): the page after the last row is the rows that sort after it, which an ORDER BY ... USING operator makes hard to express; sort by plain columns ending with a unique key and use perfguard.keyset_predicate('<order by>', '<jsonb of the last row>')",
						 order.data);
		return out.data;
	}

	initStringInfo(&pred);
	if (!mixed)
	{
		const char *op = (first->dir == SORTBY_DESC) ? "<" : ">";

		if (nkeys == 1)
			appendStringInfo(&pred, "%s %s $last_%s", first->expr, op, first->name);
		else
		{
			appendStringInfoChar(&pred, '(');
			appendStringInfoString(&pred, cols.data);
			appendStringInfo(&pred, ") %s (", op);
			i = 0;
			foreach(lc, keys)
			{
				pfgSortKey *k = lfirst(lc);

				appendStringInfo(&pred, "%s$last_%s", i++ > 0 ? ", " : "", k->name);
			}
			appendStringInfoChar(&pred, ')');
		}
	}
	else
	{
		/* a OR (a = .. AND b > ..) OR ...: one branch per key */
		int			b;

		for (b = 0; b < nkeys; b++)
		{
			int			c;

			if (b > 0)
				appendStringInfoString(&pred, " OR ");
			if (b > 0)
				appendStringInfoChar(&pred, '(');
			for (c = 0; c <= b; c++)
			{
				pfgSortKey *k = list_nth(keys, c);

				if (c > 0)
					appendStringInfoString(&pred, " AND ");
				if (c < b)
					appendStringInfo(&pred, "%s = $last_%s", k->expr, k->name);
				else
					appendStringInfo(&pred, "%s %s $last_%s", k->expr,
									 k->dir == SORTBY_DESC ? "<" : ">", k->name);
			}
			if (b > 0)
				appendStringInfoChar(&pred, ')');
		}
	}

	appendStringInfo(&out,
					 "replace OFFSET with a keyset predicate built from the last row of the previous page: WHERE %s ORDER BY %s LIMIT <page size>",
					 pred.data, order.data);
	if (mixed)
		appendStringInfoString(&out,
							   " (the ORDER BY mixes ASC and DESC, so a single row comparison cannot express it; the predicate is expanded column by column)");
	appendStringInfo(&out,
					 "; the ORDER BY must be unique (end it with the primary key) and an index on (%s) makes each page an index range scan",
					 cols.data);
	if (nulls_given)
		appendStringInfoString(&out, "; the NULLS FIRST/LAST placement needs IS NULL branches");
	if (all_columns)
		appendStringInfo(&out,
						 "; perfguard.keyset_predicate(%s, '<jsonb of the last row>') builds the predicate (NULLs and mixed directions included) and perfguard.keyset_page() serves whole pages",
						 quote_literal_cstr(kporder.data));
	appendStringInfoString(&out,
						   " / Django: filter on the last row's values instead of slicing at an offset, or DRF CursorPagination / Rails: where with the last row's values and .limit(n) instead of .offset()");
	return out.data;
}

/*
 * perfguard_keyset_suggestion
 *		perfguard._keyset_suggestion(query text): the suggestion of
 *		perfguard.offset_pagination.  A text that does not parse (truncated,
 *		or NULL because the caller may not see it) gets the generic advice.
 */
Datum
perfguard_keyset_suggestion(PG_FUNCTION_ARGS)
{
	char	   *query = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *result = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (query)
	{
		PG_TRY();
		{
			result = keyset_suggestion(query);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			/* a cancel or shutdown is not a parse failure: let it through */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
				edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
				ReThrowError(edata);
			FreeErrorData(edata);
			result = NULL;
		}
		PG_END_TRY();
	}
	if (result == NULL)
		result = "replace OFFSET with a keyset predicate on the ORDER BY columns: WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT <page size>, with the values of the last row of the previous page; perfguard.keyset_predicate('<order by>', '<jsonb of the last row>') builds it / Django: DRF CursorPagination / Rails: where(...).limit(n) instead of .offset()";
	PG_RETURN_TEXT_P(cstring_to_text(result));
}
