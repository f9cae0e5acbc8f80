/*-------------------------------------------------------------------------
 *
 * plan_checks.c
 *		The plan findings of one execution, found by a post-order walk of
 *		its PlanState tree: big filtered Seq Scans, nested loops that run
 *		their inner side many times, sorts that spill to disk, hash joins
 *		over work_mem, misestimates.
 *
 * Pure walkers: nothing here touches shared memory or locks; the walk only
 * reads the executed tree (instrumentation, when the execution was
 * sampled) and the catalogs (relation and column names for the findings'
 * texts), so it may ERROR and runs inside the caller's PG_TRY, in a
 * temporary memory context (plan_sample.c).
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/plan_checks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/explain.h"
#include "executor/hashjoin.h"
#include "executor/instrument.h"
#include "executor/nodeHash.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplesort.h"

#include "plan_checks.h"

/*---- thresholds ----*/
#define PFG_SEQSCAN_MIN_ROWS	10000	/* rows read per loop: a big table */
#define PFG_SEQSCAN_FILTERED	0.9 /* fraction of them the filter removed */
#define PFG_NESTLOOP_MIN_LOOPS	1000	/* executions of a nested loop's inner side */
#define PFG_MISESTIMATE_FACTOR	10.0	/* actual vs estimated rows */
#define PFG_MISESTIMATE_MIN_ROWS 100.0	/* ignore tiny row counts */


static Oid	scan_relid(PlannedStmt *pstmt, Plan *plan);
static void scan_columns(PlannedStmt *pstmt, Plan *plan, StringInfo buf,
						 int *ncols);
static char *qualified_name(Oid relid);

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
	strlcpy(x->node, pfg_plan_node_name(ps), PFG_NODE_LEN);
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
	relid = pfg_plan_first_scan_relid(w->pstmt, inner->plan, &scan);
	x = found_add(w, PFG_PLAN_NESTED_LOOP_MANY, relid,
				  (int64) inner->instrument->nloops, ps);
	if (x == NULL)
		return;
	initStringInfo(&cols);
	if (scan)
		scan_columns(w->pstmt, scan, &cols, &ncols);
	snprintf(x->detail, PFG_DETAIL_LEN,
			 "the inner side (%s%s%s) ran %.0f times, %.1f rows per run",
			 pfg_plan_node_name(inner), x->relation[0] ? " on " : "", x->relation,
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
	relid = pfg_plan_first_scan_relid(w->pstmt, ps->plan, &scan);
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

const char *
pfg_plan_node_name(PlanState *ps)
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
Oid
pfg_plan_first_scan_relid(PlannedStmt *pstmt, Plan *plan, Plan **scan)
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
	relid = pfg_plan_first_scan_relid(pstmt, outerPlan(plan), scan);
	if (!OidIsValid(relid) && innerPlan(plan))
		relid = pfg_plan_first_scan_relid(pstmt, innerPlan(plan), scan);
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


/*
 * pfg_plan_walk
 *		Collect the findings of the executed tree "ps" into w (whose pstmt
 *		and analyzed the caller has set).  May ERROR (catalog lookups).
 */
bool
pfg_plan_walk(PlanState *ps, pfgWalk *w)
{
	return plan_walker(ps, w);
}
