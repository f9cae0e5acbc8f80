/*-------------------------------------------------------------------------
 *
 * perfguard.c
 *		Entry point of perfguard: _PG_init, every GUC, and the thin hook
 *		bodies that gate, time and dispatch to the concern modules in src/.
 *
 * Per top-level statement the hot path is:
 *	post_parse_analyze	fold constant IN-lists (only when two constants sit
 *						next to each other), hash the constants' bytes;
 *	ExecutorStart		scope boundaries (a memcmp of the trailing comment,
 *						one timestamp comparison), two probes of backend-local
 *						hash tables, the guard checks;
 *	ExecutorRun/Finish	a clock read before and after, three buffer counters;
 *	ExecutorEnd			one partition LWLock in shared mode, one spinlock,
 *						the counters; findings are flushed only when a
 *						detector fired.
 * Nothing on it reads the catalogs or allocates in shared memory.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  perfguard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "storage/ipc.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/queryjumble.h"

#include "fingerprint.h"
#include "hypo_index.h"
#include "index_evidence.h"
#include "nplusone_fix.h"
#include "plan_sample.h"
#include "report.h"
#include "scope.h"
#include "store.h"
#include "store_cache.h"

PG_MODULE_MAGIC;

/*---- GUC variables ----*/
bool		pfg_enabled = true;
int			pfg_max_statements = 5000;
int			pfg_track = PFG_TRACK_TOP;
bool		pfg_save = true;
int			pfg_n_plus_one_threshold = 5;
int			pfg_n_plus_one_linked_threshold = 2;
int			pfg_max_open_requests = 1024;
int			pfg_duplicate_threshold = 2;
int			pfg_write_loop_threshold = 5;
int			pfg_request_gap = 200;
int			pfg_slow_query_ms = 500;
int			pfg_offset_threshold = 1000;
int			pfg_unbounded_rows = 1000;
int			pfg_on_n_plus_one = PFG_GUARD_OFF;
int			pfg_on_duplicate = PFG_GUARD_OFF;
int			pfg_max_queries_per_request = 0;
int			pfg_on_too_many_queries = PFG_GUARD_OFF;
bool		pfg_capture_parameters = false;
bool		pfg_include_test = false;
char	   *pfg_cursor_secret = NULL;
int			pfg_window = 60000;
int			pfg_unused_index_min_age = 7 * 24 * 3600;
int			pfg_advice_refresh = 300;

static const struct config_enum_entry track_options[] = {
	{"top", PFG_TRACK_TOP, false},
	{"all", PFG_TRACK_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry guard_options[] = {
	{"off", PFG_GUARD_OFF, false},
	{"log", PFG_GUARD_LOG, false},
	{"warning", PFG_GUARD_WARNING, false},
	{"error", PFG_GUARD_ERROR, false},
	{"collect", PFG_GUARD_COLLECT, false},
	{"false", PFG_GUARD_OFF, true},
	{"no", PFG_GUARD_OFF, true},
	{"0", PFG_GUARD_OFF, true},
	{NULL, 0, false}
};

/*---- saved hook values ----*/
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static get_relation_info_hook_type prev_get_relation_info_hook = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;
static planner_hook_type prev_planner_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

/*---- backend-local state ----*/

/* Nesting depth of executor/planner/utility calls. */
static int	nesting_level = 0;

/* Inside a top-level EXECUTE, DECLARE CURSOR, FETCH or CLOSE. */
static int	client_utility_depth = 0;

/* nesting_level when each open subtransaction started, by its nest level */
static int *subxact_levels = NULL;
static int	subxact_levels_cap = 0;

/*
 * An execution in flight: started, not yet ended.  Kept in a small array
 * searched from the top (the current query is nearly always last); cursors
 * and portals can end out of order.
 */
#define PFG_MAX_INFLIGHT	32
typedef struct pfgInflight
{
	QueryDesc  *qd;
	SubTransactionId subid;
	bool		toplevel;
	int64		run_start;		/* monotonic clock, ns */
	double		ms;
	int64		blks_hit;
	int64		blks_read;
	int64		temp_written;
	int64		hit_start;
	int64		read_start;
	int64		temp_start;
	int64		fetched;		/* rows returned by its runs so far */
	pfgScopeRef ref;
} pfgInflight;

static pfgInflight inflight[PFG_MAX_INFLIGHT];
static int	ninflight = 0;

/* Constants hash of the statement just analysed, for its ExecutorStart. */
static struct
{
	bool		valid;
	bool		batched;		/* it had a list of constants (IN (...)) */
	uint64		queryid;
	uint64		hash;
} pending;

/*
 * The client statement last analysed, in case it fails before it runs (while
 * planning: "WHERE id = 1/0"), and the copy the log hook takes of its text
 * then, so that perfguard.errors can show what failed.  The copy is a plain
 * memcpy (error reporting must not allocate or wait) of the text that is
 * still being run (debug_query_string, so never a stale pointer); the entry
 * is created at the next statement.
 */
static struct
{
	const char *src;
	int			loc;
	int			len;
	uint64		queryid;
	CmdType		cmd;
} analysed;

static struct
{
	bool		valid;
	uint64		queryid;
	CmdType		cmd;
	Oid			userid;
	Oid			dbid;
	char		text[PFG_QUERY_LEN];
} failed_early;

#define pfg_active() \
	(pfg_enabled && pfg_store_ready() && !IsParallelWorker())

/*---- function declarations ----*/
void		_PG_init(void);

static void pfg_shmem_request(void);
static void pfg_shmem_startup(void);
static void install_get_relation_info(void);
static void pfg_get_relation_info(PlannerInfo *root, Oid relationObjectId,
								  bool inhparent, RelOptInfo *rel);
static void pfg_post_parse_analyze(ParseState *pstate, Query *query,
								   JumbleState *jstate);
static PlannedStmt *pfg_planner(Query *parse, const char *query_string,
								int cursorOptions, ParamListInfo boundParams);
static void pfg_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void pfg_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
							uint64 count, bool execute_once);
static void pfg_ExecutorFinish(QueryDesc *queryDesc);
static void pfg_ExecutorEnd(QueryDesc *queryDesc);
static void pfg_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree,
							   ProcessUtilityContext context,
							   ParamListInfo params,
							   QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);
static void pfg_emit_log(ErrorData *edata);
static void pfg_xact_callback(XactEvent event, void *arg);
static void pfg_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/*
 * _PG_init
 *		Define the settings; when preloaded, request shared memory and
 *		install the hooks.
 */
void
_PG_init(void)
{
	/*
	 * Settings that can be changed without a restart are defined even when
	 * the library is only loaded by CREATE EXTENSION, so that SET works and
	 * the keyset helpers can read perfguard.cursor_secret.
	 */
	DefineCustomBoolVariable("perfguard.enabled",
							 "Master switch of perfguard.",
							 "When off, every hook costs one branch and nothing is recorded.",
							 &pfg_enabled, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("perfguard.track",
							 "Which statements perfguard tracks: top (client statements) or all (also statements nested in functions).",
							 NULL, &pfg_track, PFG_TRACK_TOP, track_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("perfguard.save",
							 "Keep statistics across a clean server restart.",
							 NULL, &pfg_save, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.n_plus_one_threshold",
							"Executions of one SELECT fingerprint with different parameters in a request that make an N+1 suspect.",
							NULL, &pfg_n_plus_one_threshold, 5, 2, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.n_plus_one_linked_threshold",
							"Distinct parameter sets of one SELECT fingerprint after a multi-row parent query in a request that make an N+1 suspect.",
							"The parent must have returned at least as many rows as there are distinct parameter sets.",
							&pfg_n_plus_one_linked_threshold, 2, 2, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.duplicate_threshold",
							"Executions of one fingerprint with identical parameters in a request that make a duplicate.",
							NULL, &pfg_duplicate_threshold, 2, 2, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.write_loop_threshold",
							"Executions of one INSERT/UPDATE/DELETE fingerprint in a request that make a write loop.",
							NULL, &pfg_write_loop_threshold, 5, 2, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.request_gap",
							"Idle time between two statements of a session that ends a request scope.",
							NULL, &pfg_request_gap, 200, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.window",
							"Length of the time windows of perfguard.statements_history (60 are kept).",
							NULL, &pfg_window, 60000, 1000, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.slow_query_ms",
							"Statements slower than this get a plan sample and plan findings.",
							NULL, &pfg_slow_query_ms, 500, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.offset_threshold",
							"OFFSET at or above this is reported as deep offset pagination.",
							NULL, &pfg_offset_threshold, 1000, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.unbounded_rows",
							"A SELECT without LIMIT returning more rows than this is reported as unbounded.",
							NULL, &pfg_unbounded_rows, 1000, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("perfguard.on_n_plus_one",
							 "What happens to the statement that crosses the N+1 threshold: off, log, warning, error, or collect (fail once at perfguard.check_collected() or end_request(), listing every finding).",
							 NULL, &pfg_on_n_plus_one, PFG_GUARD_OFF, guard_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("perfguard.on_duplicate",
							 "What happens to the statement that crosses the duplicate threshold: off, log, warning, error or collect.",
							 NULL, &pfg_on_duplicate, PFG_GUARD_OFF, guard_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.max_queries_per_request",
							"Queries per request above which perfguard.on_too_many_queries applies (0 = off).",
							NULL, &pfg_max_queries_per_request, 0, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("perfguard.on_too_many_queries",
							 "What happens to the statement that exceeds perfguard.max_queries_per_request: off, log, warning, error or collect.",
							 NULL, &pfg_on_too_many_queries, PFG_GUARD_OFF, guard_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("perfguard.capture_parameters",
							 "Store one example parameter set per finding.",
							 "Off means parameter values never reach shared memory.",
							 &pfg_capture_parameters, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("perfguard.include_test",
							 "Show the findings of test traffic (statements tagged perfguard='test') in the reports.",
							 "Test traffic is recorded apart (its requests under \"[test] <route>\") and left out of the findings unless this is on.",
							 &pfg_include_test, false, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.unused_index_min_age",
							"Statistics must cover this long before an index is advised to be dropped.",
							"Since the statistics were reset and since perfguard first saw the index.",
							&pfg_unused_index_min_age, 7 * 24 * 3600, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.advice_refresh",
							"Index advice in perfguard.findings is recomputed when older than this.",
							"perfguard.refresh_advice() recomputes it at once; DDL and ANALYZE make it stale.",
							&pfg_advice_refresh, 300, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("perfguard.cursor_secret",
							   "Secret key that signs keyset-pagination cursors (HMAC-SHA256).",
							   NULL, &pfg_cursor_secret, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("perfguard");
		return;
	}

	DefineCustomIntVariable("perfguard.max_statements",
							"Statement entries kept in shared memory.",
							NULL, &pfg_max_statements, 5000, 100, INT_MAX / 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("perfguard.max_open_requests",
							"Requests with an id (traceparent, request_id) open at once in shared memory.",
							"Each costs about 25 kB; when full, the longest idle request ends early.",
							&pfg_max_open_requests, 1024, 16, INT_MAX / 65536,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("perfguard");

	EnableQueryId();

	/* the fixes of N+1s and sequences (findings, guard hints): report layer */
	pfg_scope_set_fix_fn(pfg_fix_derive);
	/* and so does the index evidence of a sampled execution */
	pfg_plan_set_evidence_fn(pfg_index_evidence);

	/*
	 * Install hooks.
	 */
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pfg_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pfg_shmem_startup;
	/* get_relation_info: installed when the index advisor first needs it */
	pfg_hypo_set_install_fn(install_get_relation_info);
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = pfg_post_parse_analyze;
	prev_planner_hook = planner_hook;
	planner_hook = pfg_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = pfg_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = pfg_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = pfg_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = pfg_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pfg_ProcessUtility;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = pfg_emit_log;

	RegisterXactCallback(pfg_xact_callback, NULL);
	RegisterSubXactCallback(pfg_subxact_callback, NULL);
}

/*
 * pfg_shmem_request
 *		Request shared memory and LWLocks (the store sizes every part).
 */
static void
pfg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	pfg_store_shmem_request();
}

/*
 * pfg_shmem_startup
 *		Create or attach to the shared state (the store does it all).
 */
static void
pfg_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pfg_store_shmem_startup();
}

/*
 * install_get_relation_info
 *		Install the get_relation_info hook, in this backend, the first time
 *		the index advisor plans with hypothetical indexes (hypo_index.c calls
 *		this once): every other planning of every statement does without the
 *		call.  Chains to whatever hook was installed then.
 */
static void
install_get_relation_info(void)
{
	prev_get_relation_info_hook = get_relation_info_hook;
	get_relation_info_hook = pfg_get_relation_info;
}

/*
 * pfg_get_relation_info
 *		Let the index advisor show the planner its hypothetical indexes; one
 *		branch unless the advisor is planning.
 */
static void
pfg_get_relation_info(PlannerInfo *root, Oid relationObjectId,
					  bool inhparent, RelOptInfo *rel)
{
	if (prev_get_relation_info_hook)
		prev_get_relation_info_hook(root, relationObjectId, inhparent, rel);
	pfg_hypo_get_relation_info(root, relationObjectId, inhparent, rel);
}

/*
 * note_failed_early
 *		Give a statement that failed before it ran (its text copied by the
 *		log hook) an entry with its normalised text.  Never raises: a text
 *		that does not normalise is dropped.
 */
static void
note_failed_early(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	pfgStmtKey	key;

	failed_early.valid = false;
	if (!pfg_store_ready())
		return;
	memset(&key, 0, sizeof(key));
	key.userid = failed_early.userid;
	key.dbid = failed_early.dbid;
	key.queryid = failed_early.queryid;
	key.toplevel = true;
	PG_TRY();
	{
		pfg_store_ensure_text(&key, failed_early.cmd, failed_early.text, 0,
							  strlen(failed_early.text));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * pfg_post_parse_analyze
 *		Fold constant lists into the fingerprint and remember the hash of the
 *		statement's constants for its execution.
 */
static void
pfg_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);

	if (unlikely(failed_early.valid))
		note_failed_early();

	if (!pfg_active() || query->utilityStmt != NULL || query->queryId == 0)
		return;

	pending.batched = false;
	if (jstate && jstate->clocations_count >= 2)
	{
		uint64		folded = pfg_fold_inlists(query, pstate->p_sourcetext, jstate);

		if (folded != 0)
		{
			query->queryId = folded;
			pending.batched = true;
		}
	}

	if (nesting_level == 0)
	{
		analysed.src = pstate->p_sourcetext;
		analysed.loc = query->stmt_location;
		analysed.len = query->stmt_len;
		analysed.queryid = query->queryId;
		analysed.cmd = query->commandType;
	}

	/* parameter identity matters to the SELECT detectors only */
	if (nesting_level == 0 && query->commandType == CMD_SELECT)
	{
		pending.valid = true;
		pending.queryid = query->queryId;
		pending.hash = pfg_hash_constants(pstate->p_sourcetext, jstate);
	}
}

/*
 * pfg_planner
 *		Only keeps the nesting level right, so that statements run while
 *		planning (functions evaluated at plan time) count as nested.  No
 *		PG_TRY on this path of every statement: when planning fails, the
 *		abort of the transaction (or of the subtransaction that catches the
 *		error) restores the level (pfg_xact_callback, pfg_subxact_callback).
 */
static PlannedStmt *
pfg_planner(Query *parse, const char *query_string, int cursorOptions,
			ParamListInfo boundParams)
{
	PlannedStmt *result;

	nesting_level++;
	if (prev_planner_hook)
		result = prev_planner_hook(parse, query_string, cursorOptions,
								   boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions,
								  boundParams);
	nesting_level--;
	return result;
}

static pfgInflight *
inflight_find(QueryDesc *qd)
{
	int			i;

	for (i = ninflight - 1; i >= 0; i--)
		if (inflight[i].qd == qd)
			return &inflight[i];
	return NULL;
}

static void
inflight_remove(pfgInflight *f)
{
	int			i = f - inflight;

	if (i < ninflight - 1)
		memmove(&inflight[i], &inflight[i + 1],
				sizeof(pfgInflight) * (ninflight - 1 - i));
	ninflight--;
}

/*
 * pfg_ExecutorStart
 *		Top-level statements go through the request scope (which may raise
 *		the guard errors, before anything runs); tracked statements get an
 *		in-flight slot.
 */
/*
 * is_client_statement
 *		Is this execution a statement the client sent?  At nesting level 0 the
 *		executor also runs queries the client did not send: the foreign-key
 *		checks of deferred constraints, fired at COMMIT (Django creates every
 *		foreign key DEFERRABLE INITIALLY DEFERRED), and other commit-time
 *		triggers.  Those run through SPI with a source text of their own,
 *		while a client statement's source text is the one being executed
 *		(debug_query_string: the same pointer for the simple protocol, a copy
 *		for the extended one), or it runs inside a top-level EXECUTE/cursor
 *		command.
 */
static inline bool
is_client_statement(QueryDesc *queryDesc)
{
	if (nesting_level != 0)
		return false;
	if (client_utility_depth > 0)
		return true;
	if (queryDesc->sourceText == debug_query_string)
		return true;
	return queryDesc->sourceText != NULL && debug_query_string != NULL &&
		strcmp(queryDesc->sourceText, debug_query_string) == 0;
}

static void
pfg_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		track = false;
	bool		toplevel;

	toplevel = pfg_enabled && is_client_statement(queryDesc);
	if (toplevel && client_utility_depth == 0)
		pfg_report_self = false;	/* a report statement that failed */

	if (pfg_active() && (toplevel || pfg_track == PFG_TRACK_ALL) &&
		queryDesc->plannedstmt->queryId != UINT64CONST(0) &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
	{
		pfgInflight *f = ninflight > 0 ? inflight_find(queryDesc) : NULL;

		/*
		 * Its in-flight slot first: if the guard raises an error below, or
		 * the executor does, the (sub)transaction abort finds the request
		 * it counts as running in it.
		 */
		if (f == NULL && ninflight < PFG_MAX_INFLIGHT)
			f = &inflight[ninflight++];
		if (f == NULL)
			pfg_store_count_dropped_event();
		else
		{
			track = true;
			f->qd = queryDesc;
			f->subid = GetCurrentSubTransactionId();
			f->toplevel = toplevel;
			f->ms = 0;
			f->blks_hit = f->blks_read = f->temp_written = 0;
			f->fetched = 0;
			f->ref.gen = 0;
			f->ref.fpidx = -1;
			f->ref.np_add = f->ref.dup_add = 0;
			f->ref.shared = false;
			f->ref.box = -1;
		}
		if (f != NULL && toplevel)
		{
			const char *src = queryDesc->sourceText;
			int			loc = queryDesc->plannedstmt->stmt_location;
			int			len = queryDesc->plannedstmt->stmt_len;
			uint64		queryid = queryDesc->plannedstmt->queryId;
			uint64		phash = 0;
			bool		batched = false;

			if (src)
				pfg_statement_text(src, &loc, &len);
			if (pending.valid && pending.queryid == queryid)
			{
				phash = pending.hash;
				batched = pending.batched;
			}
			pending.valid = false;
			if (queryDesc->params)
				phash = hash_combine64(phash, pfg_hash_params(queryDesc->params));

			pfg_scope_executor_start(&f->ref, queryid, queryDesc->operation,
									 phash, batched, src, loc, len,
									 queryDesc->params);
		}
	}

	if (toplevel)
		analysed.queryid = 0;	/* it runs: note_failed takes over */
	pfg_plan_executor_start(queryDesc, track);

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * note_failed
 *		A tracked client statement did not end (its transaction or
 *		subtransaction aborted: it failed, or its cursor was open): make sure
 *		its entry has a normalised text, so that perfguard.errors (which
 *		counts the failure from the log hook) can show what failed even if
 *		the statement never succeeded.  Called from the abort callbacks, while
 *		the query's memory is still there; never raises.
 */
static void
note_failed(pfgInflight *f)
{
	QueryDesc  *queryDesc = f->qd;
	MemoryContext oldcxt = CurrentMemoryContext;
	pfgStmtKey	key;

	if (!f->toplevel || !pfg_store_ready())
		return;
	memset(&key, 0, sizeof(key));
	key.userid = GetUserId();
	key.dbid = MyDatabaseId;
	key.queryid = queryDesc->plannedstmt->queryId;
	key.toplevel = true;
	PG_TRY();
	{
		pfg_store_ensure_text(&key, queryDesc->operation,
							  queryDesc->sourceText,
							  queryDesc->plannedstmt->stmt_location,
							  queryDesc->plannedstmt->stmt_len);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * inflight_aborted
 *		An execution in flight will not end: its (sub)transaction aborted.
 *		A client statement gets its text noted (note_failed), and its request
 *		must not count it as running.
 */
static void
inflight_aborted(pfgInflight *f)
{
	if (!f->toplevel || !pfg_store_ready())
		return;
	note_failed(f);
	pfg_scope_abort_ref(&f->ref);
}

/* The monotonic clock in nanoseconds (what INSTR_TIME_SET_CURRENT reads). */
static inline int64
clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void
run_begin(pfgInflight *f)
{
	f->run_start = clock_ns();
	f->hit_start = pgBufferUsage.shared_blks_hit;
	f->read_start = pgBufferUsage.shared_blks_read;
	f->temp_start = pgBufferUsage.temp_blks_written;
}

static inline void
run_end(pfgInflight *f)
{
	f->ms += (double) (clock_ns() - f->run_start) / 1000000.0;
	f->blks_hit += pgBufferUsage.shared_blks_hit - f->hit_start;
	f->blks_read += pgBufferUsage.shared_blks_read - f->read_start;
	f->temp_written += pgBufferUsage.temp_blks_written - f->temp_start;
}

/*
 * pfg_ExecutorRun
 *		Time the run and count its buffers; keep the nesting level.
 */
static void
pfg_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				bool execute_once)
{
	pfgInflight *f = ninflight > 0 ? inflight_find(queryDesc) : NULL;
	int			idx = f ? (int) (f - inflight) : -1;

	if (f)
		run_begin(f);

	/*
	 * No PG_TRY on this path of every statement: when the run fails, the
	 * abort of the transaction (or of the subtransaction that catches the
	 * error) restores the nesting level and notes the failed statement
	 * (pfg_xact_callback, pfg_subxact_callback).
	 */
	nesting_level++;
	if (prev_ExecutorRun)
		prev_ExecutorRun(queryDesc, direction, count, execute_once);
	else
		standard_ExecutorRun(queryDesc, direction, count, execute_once);
	nesting_level--;
	/* the slot array may have moved while nested statements ran */
	if (idx >= 0 && idx < ninflight && inflight[idx].qd == queryDesc)
		f = &inflight[idx];
	else
		f = ninflight > 0 ? inflight_find(queryDesc) : NULL;
	if (f)
	{
		run_end(f);

		/*
		 * A cursor's FETCH or a portal run with a row limit returns the rows
		 * of a query in batches: each batch makes it the parent of the
		 * lookups that follow (Django's .iterator(), yield_per).
		 */
		if (f->toplevel && queryDesc->operation == CMD_SELECT &&
			(count != 0 || client_utility_depth > 0) && queryDesc->estate)
		{
			f->fetched += queryDesc->estate->es_processed;
			pfg_scope_note_rows(&f->ref, queryDesc->plannedstmt->queryId,
								f->fetched);
		}
	}
}

static void
pfg_ExecutorFinish(QueryDesc *queryDesc)
{
	pfgInflight *f;

	/*
	 * A plain SELECT has nothing to finish: no AFTER trigger fires and no
	 * statement runs here, so there is nothing to time and no nesting to
	 * keep (data-modifying CTEs are the exception).
	 */
	if (queryDesc->operation == CMD_SELECT &&
		!queryDesc->plannedstmt->hasModifyingCTE)
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
		return;
	}

	f = ninflight > 0 ? inflight_find(queryDesc) : NULL;

	if (f)
		run_begin(f);
	/* no PG_TRY: see pfg_ExecutorRun */
	nesting_level++;
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	nesting_level--;
	f = ninflight > 0 ? inflight_find(queryDesc) : NULL;
	if (f)
		run_end(f);
}

/*
 * pfg_ExecutorEnd
 *		Record the execution, then chain.  The end of a top-level statement
 *		also ends its part in the request scope.
 */
static void
pfg_ExecutorEnd(QueryDesc *queryDesc)
{
	pfgInflight *f = ninflight > 0 ? inflight_find(queryDesc) : NULL;
	bool		toplevel = false;
	double		exec_ms = 0;

	if (f && pfg_store_ready())
	{
		pfgStmtKey	key;
		pfgExecStats st;
		uint64		queryid = queryDesc->plannedstmt->queryId;
		int64		rows = queryDesc->estate ? queryDesc->estate->es_processed : 0;

		toplevel = f->toplevel;
		exec_ms = f->ms;
		st.ms = f->ms;
		st.rows = rows;
		st.shared_blks_hit = f->blks_hit;
		st.shared_blks_read = f->blks_read;
		st.temp_blks_written = f->temp_written;
		st.n_plus_one_calls = st.duplicate_calls = 0;
		if (toplevel)
		{
			PlanState  *top = queryDesc->planstate;
			bool		paged = top && IsA(top, LimitState) &&
				((LimitState *) top)->offset > 0;

			/* perfguard's own report: counted, but no finding */
			if (unlikely(pfg_report_self))
				pfg_scope_exclude(&f->ref);
			pfg_scope_executor_end(&f->ref, queryid, queryDesc->operation,
								   exec_ms, rows, paged, &st);
			if (unlikely(pfg_report_self))
				st.n_plus_one_calls = st.duplicate_calls = 0;
		}

		memset(&key, 0, sizeof(key));
		key.userid = GetUserId();
		key.dbid = MyDatabaseId;
		key.queryid = queryid;
		key.toplevel = toplevel;
		pfg_store_record(&key, queryDesc->operation, &st,
						 queryDesc->sourceText,
						 queryDesc->plannedstmt->stmt_location,
						 queryDesc->plannedstmt->stmt_len);
		/* perfguard's own report statements are never slow queries */
		if (likely(!pfg_report_self))
			pfg_plan_executor_end(queryDesc, &key, exec_ms, rows);
		/* nothing above runs a statement: "f" is still where it was */
		inflight_remove(f);
	}
	else if (f)
		inflight_remove(f);

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);

	if (toplevel)
	{
		pfg_scope_statement_end(exec_ms);
		pfg_report_self = false;
	}
}

/*
 * utility_nests
 *		Does this utility statement run its queries as nested ones?  EXECUTE,
 *		cursors and transaction control run the client's own statement, which
 *		stays top-level.
 */
static bool
utility_nests(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_ExecuteStmt:
		case T_PrepareStmt:
		case T_DeallocateStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
		case T_TransactionStmt:
			return false;
		default:
			return true;
	}
}

/*
 * pfg_ProcessUtility
 *		Scope boundaries of utility statements (sqlcommenter tags, gaps,
 *		transaction blocks) and the nesting level.
 */
static void
pfg_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	volatile bool top = (nesting_level == 0 && pfg_active());
	volatile bool nests = utility_nests(parsetree);
	volatile bool client = (nesting_level == 0 && !nests &&
							!IsA(parsetree, TransactionStmt));

	if (top)
	{
		int			loc = pstmt->stmt_location;
		int			len = pstmt->stmt_len;

		if (queryString)
			pfg_statement_text(queryString, &loc, &len);
		pfg_scope_statement_start(queryString, loc, len);
		pfg_scope_utility(parsetree);

		/*
		 * The query of a cursor has no query id of its own (only the DECLARE
		 * text is jumbled, cursor name included): give it the one its query
		 * would have, so that its rows are tracked and it can be the parent
		 * of the lookups that follow each FETCH.
		 */
		if (IsA(parsetree, DeclareCursorStmt))
		{
			Node	   *q = ((DeclareCursorStmt *) parsetree)->query;

			if (q && IsA(q, Query) && ((Query *) q)->queryId == UINT64CONST(0))
				(void) JumbleQuery((Query *) q, queryString);
		}
	}
	/* DDL and ANALYZE make the cached index advice stale */
	if (pfg_active() && pfg_cache_ddl_invalidates(parsetree))
		pfg_cache_invalidate();

	if (nests)
		nesting_level++;
	if (client)
		client_utility_depth++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (nests)
			nesting_level--;
		if (client)
			client_utility_depth--;
	}
	PG_END_TRY();

	if (top)
		pfg_scope_statement_end(-1);
}

/*
 * pfg_emit_log
 *		Count statements that fail, per fingerprint and SQLSTATE
 *		(perfguard.errors): pg_stat_statements only sees statements that
 *		finish.  Runs inside error reporting, in every process: only regular
 *		backends with a query id record, and the store never waits for a lock
 *		here.  Errors hidden by log_min_messages are not seen.
 */
static void
pfg_emit_log(ErrorData *edata)
{
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);

	if (edata->elevel == ERROR && pfg_enabled && pfg_store_ready() &&
		MyBackendType == B_BACKEND && !proc_exit_inprogress)
	{
		uint64		queryid = pgstat_get_my_query_id();

		/*
		 * Failed before it ran (no executor, so no text yet): copy its text
		 * for the next statement to store.
		 */
		if (queryid != 0 && queryid == analysed.queryid && analysed.src &&
			analysed.src == debug_query_string && !failed_early.valid)
		{
			int			loc = Max(analysed.loc, 0);
			int			len = analysed.len > 0 ? analysed.len :
				(int) strlen(analysed.src + loc);

			len = Min(len, PFG_QUERY_LEN - 1);
			memcpy(failed_early.text, analysed.src + loc, len);
			failed_early.text[len] = '\0';
			failed_early.queryid = queryid;
			failed_early.cmd = analysed.cmd;
			failed_early.userid = GetUserId();
			failed_early.dbid = MyDatabaseId;
			failed_early.valid = true;
		}

		if (queryid != 0)
		{
			pfgErrorKey key;

			memset(&key, 0, sizeof(key));
			key.userid = GetUserId();
			key.dbid = MyDatabaseId;
			key.queryid = queryid;
			key.sqlstate = edata->sqlerrcode;
			pfg_store_record_error(&key, edata->message);
		}
	}
}

/*
 * Executions whose transaction or subtransaction aborted never reach
 * ExecutorEnd: forget their slots.
 */
static void
pfg_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		int			i;

		for (i = 0; i < ninflight; i++)
			inflight_aborted(&inflight[i]);
		ninflight = 0;
		nesting_level = 0;
		client_utility_depth = 0;
		pending.valid = false;
		pfg_report_self = false;
	}
}

static void
pfg_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	/*
	 * The nesting levels where each open subtransaction started: an error it
	 * catches (a PL/pgSQL exception block) resumes there.
	 */
	if (event == SUBXACT_EVENT_START_SUB)
	{
		if (level >= subxact_levels_cap)
		{
			int			cap = Max(16, level * 2);

			subxact_levels = subxact_levels ?
				repalloc(subxact_levels, sizeof(int) * cap) :
				MemoryContextAlloc(TopMemoryContext, sizeof(int) * cap);
			subxact_levels_cap = cap;
		}
		subxact_levels[level] = nesting_level;
		return;
	}
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (level < subxact_levels_cap)
			nesting_level = subxact_levels[level];
		while (ninflight > 0 && inflight[ninflight - 1].subid >= mySubid)
			inflight_aborted(&inflight[--ninflight]);
	}
}
