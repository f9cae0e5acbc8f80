/*-------------------------------------------------------------------------
 *
 * index_evidence.c
 *		Evidence from executions for the index advisor: when a statement's
 *		plan is sampled (plan_sample.c: a slow or an instrumented execution),
 *		the backend that ran it still has its parameter values (the bound
 *		values, or the constants of its text).  Here the statement is
 *		analysed again with those values (index_candidates.c: its custom
 *		plan, where a rare value of a skewed column is rare, and a LIKE
 *		pattern has its prefix), and only the outcome is stored
 *		(store_evidence.c): the proven index keys, the costs before and
 *		after, the selectivity of the scan (observed when the execution was
 *		instrumented, else the custom plan's estimate) and a description made
 *		of names and operators.  Never a value.  perfguard.index_advice uses
 *		this evidence for the statements that have it, and the generic plan
 *		for the others.
 *
 * When: called by plan_sample.c for every recorded sample of a top-level
 * SELECT, UPDATE or DELETE, in ExecutorEnd before standard_ExecutorEnd,
 * through a function pointer that perfguard.c registers (the hot path
 * does not link against report code).  pfg_evidence_claim lets one proof
 * per fingerprint and perfguard.window through (plus one more once an
 * instrumented execution can give the observed selectivity); any other
 * sample costs a test of a few flags and one short exclusive hold of the
 * evidence lock.  Unsampled statements never get here.
 *
 * Guarded: only in a transaction in progress (not while it aborts and
 * drops its portals), never in parallel mode, and the
 * proof runs in an internal subtransaction that is always rolled back,
 * in a memory context of its own (pfg_report_guarded_quiet): any error,
 * a cancel or a statement timeout included, only loses the evidence; the
 * user's statement has already succeeded and still does.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_evidence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fingerprint.h"
#include "index_candidates.h"
#include "index_evidence.h"
#include "report.h"
#include "store_evidence.h"

/* What the guarded proof needs, and what it fills. */
typedef struct evidenceArgs
{
	const char *text;			/* the statement's own text */
	ParamListInfo params;		/* its bound values, or NULL */
	QueryDesc  *qd;				/* the sampled execution */
	bool		analyzed;		/* its nodes were instrumented */
	pfgEvidenceEntry *entry;
} evidenceArgs;

/* Rows kept by the executed scans of one table, per loop. */
typedef struct observedRows
{
	PlannedStmt *pstmt;
	Oid			relid;
	bool		partitioned;
	double		rows;
	int			nscans;
} observedRows;

/*
 * observed_walker
 *		Sum the rows per loop that the instrumented scans of or->relid (or of
 *		its partitions) returned.
 */
static bool
observed_walker(PlanState *ps, void *arg)
{
	observedRows *or = (observedRows *) arg;

	if (ps == NULL)
		return false;
	switch (nodeTag(ps))
	{
		case T_SeqScanState:
		case T_IndexScanState:
		case T_IndexOnlyScanState:
		case T_BitmapHeapScanState:
			{
				Index		rti = ((Scan *) ps->plan)->scanrelid;
				RangeTblEntry *rte = rt_fetch(rti, or->pstmt->rtable);
				Instrumentation *in = ps->instrument;
				bool		match = (rte->relid == or->relid);

				if (!match && or->partitioned && get_rel_relispartition(rte->relid))
					match = list_member_oid(get_partition_ancestors(rte->relid),
											or->relid);
				if (match && in != NULL)
				{
					double		rows = in->ntuples + (in->running ? in->tuplecount : 0);
					double		loops = in->nloops + (in->running ? 1 : 0);

					or->rows += rows / Max(loops, 1.0);
					or->nscans++;
				}
				return false;
			}
		default:
			break;
	}
	return planstate_tree_walker(ps, observed_walker, arg);
}

/*
 * evidence_guarded_fn
 *		The proof itself, inside the guard: analyse the statement with its
 *		values and fill the entry's costs and items.
 */
static void
evidence_guarded_fn(void *arg)
{
	evidenceArgs *a = (evidenceArgs *) arg;
	pfgEvidenceEntry *e = a->entry;
	stmtAnalysis res;
	ListCell   *lc;
	int			set = 0;

	PushActiveSnapshot(GetTransactionSnapshot());
	pfg_index_analyse(a->text, a->params, 0, &res);
	PopActiveSnapshot();

	e->cost_before = res.cost_before;
	e->nitems = 0;
	foreach(lc, res.proven)
	{
		provenIndex *p = lfirst(lc);
		double		sel = -1;
		int			i;

		if (e->nitems + p->ncand > PFG_EVIDENCE_ITEMS)
			break;
		if (p->reltuples > 0)
		{
			if (a->analyzed)
			{
				observedRows or;

				memset(&or, 0, sizeof(or));
				or.pstmt = a->qd->plannedstmt;
				or.relid = p->relid;
				or.partitioned = (p->nparts > 0);
				observed_walker(a->qd->planstate, &or);
				if (or.nscans > 0)
					sel = or.rows / p->reltuples;
			}
			if (sel < 0)
				sel = p->plan_rows / p->reltuples;
			sel = Min(sel, 1.0);
		}
		for (i = 0; i < p->ncand; i++)
		{
			pfgEvidenceItem *it = &e->items[e->nitems++];

			memset(it, 0, sizeof(pfgEvidenceItem));
			it->key = p->cand[i].key;
			it->set = set;
			it->nparts = p->nparts;
			it->cost_after = p->cost_after;
			it->reltuples = p->reltuples;
			it->selectivity = sel;
			strlcpy(it->scan_desc, p->scan_desc, PFG_EVIDENCE_DESC_LEN);
		}
		set++;
	}
}

/*
 * pfg_index_evidence
 *		The sample hook (see the file header): prove the index candidates of
 *		a sampled execution with its values, once per fingerprint and window,
 *		and store the outcome.  Never raises an error.
 */
void
pfg_index_evidence(QueryDesc *queryDesc, const pfgStmtKey *key, bool analyzed)
{
	evidenceArgs a;
	pfgEvidenceEntry entry;
	MemoryContext cxt;
	TimestampTz now;
	int			loc,
				len;

	if (!pfg_evidence_ready() || queryDesc->sourceText == NULL ||
		queryDesc->plannedstmt == NULL || queryDesc->planstate == NULL)
		return;
	if (queryDesc->operation != CMD_SELECT &&
		queryDesc->operation != CMD_UPDATE &&
		queryDesc->operation != CMD_DELETE)
		return;
	/* a subtransaction may start, and the session is not going away */
	if (!IsTransactionState() || IsAbortedTransactionBlockState() ||
		IsInParallelMode() || QueryCancelPending || ProcDiePending)
		return;
	if (queryDesc->params != NULL && queryDesc->params->paramFetch != NULL)
		return;					/* dynamic parameters: no values to use */

	now = GetCurrentTimestamp();
	if (!pfg_evidence_claim(MyDatabaseId, key->queryid, analyzed, now,
							(int64) pfg_window * 1000))
		return;

	cxt = AllocSetContextCreate(CurrentMemoryContext,
								"perfguard index evidence",
								ALLOCSET_DEFAULT_SIZES);
	memset(&entry, 0, sizeof(entry));
	entry.used = true;
	entry.dbid = MyDatabaseId;
	entry.queryid = key->queryid;
	entry.claimed_at = now;

	loc = queryDesc->plannedstmt->stmt_location;
	len = queryDesc->plannedstmt->stmt_len;
	pfg_statement_text(queryDesc->sourceText, &loc, &len);
	memset(&a, 0, sizeof(a));
	a.text = MemoryContextStrdup(cxt, "");
	a.params = queryDesc->params;
	a.qd = queryDesc;
	a.analyzed = analyzed;
	a.entry = &entry;
	if (len > 0)
	{
		char	   *t = MemoryContextAlloc(cxt, len + 1);

		memcpy(t, queryDesc->sourceText + loc, len);
		t[len] = '\0';
		a.text = t;
	}

	if (len > 0 && pfg_report_guarded_quiet(evidence_guarded_fn, &a, cxt))
	{
		entry.proven_at = GetCurrentTimestamp();
		entry.observed = analyzed;
		pfg_evidence_store(&entry);
	}
	MemoryContextDelete(cxt);
}
