/*-------------------------------------------------------------------------
 *
 * index_advice.c
 *		The 'missing' rows of perfguard.index_advice, proven over the
 *		statements of the store, with their closed loop; and
 *		perfguard.advise(query) for one statement.
 *
 * Everything here runs at report time; nothing touches the hot path.  Each
 * statement of the store (of this database, that the caller may see) is
 * analysed by index_candidates.c in a guarded subtransaction (report.c),
 * so a statement that fails (a table dropped, a text that no longer parses
 * or was truncated) is skipped.  Across statements, identical candidates
 * are merged, and a candidate whose columns are a leading prefix of
 * another's is merged into that one when the longer index, planned for the
 * shorter one's statements, still proves itself for each of them.
 *
 * Closed loop: every 'missing' row is remembered (store_advice.c) with a
 * snapshot of its statements' cumulative calls and time.  At report time,
 * advice whose index now exists (a valid btree index starting with the
 * advised columns) is listed with applied = true and the mean time per call
 * before the advice and since.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_advice.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "index_candidates.h"
#include "report.h"
#include "scope.h"
#include "store.h"
#include "store_advice.h"

PG_FUNCTION_INFO_V1(perfguard_index_advice_missing);
PG_FUNCTION_INFO_V1(perfguard_advise);

/* One statement of the store, as the missing-index report sees it. */
typedef struct stmtItem
{
	uint64		queryid;
	int64		calls;
	double		total_ms;
	char	   *query;
} stmtItem;

/* One row of the missing-index report, while merging. */
typedef struct adviceRow
{
	pfgCandidate cand;
	List	   *stmts;			/* stmtItem * served */
	List	   *before;			/* double * per statement */
	List	   *after;			/* double * per statement */
	char	   *scan_desc;
	bool		merged;			/* folded into another row */
} adviceRow;

/* Cumulative counters of one query id in this database (all users). */
typedef struct qidStat
{
	uint64		queryid;
	int64		calls;
	double		total_ms;
} qidStat;

typedef struct qidStats
{
	qidStat    *items;
	int			n;
	int			cap;
} qidStats;

/*---- perfguard.index_advice (kind 'missing') ----*/

typedef struct stmtCollect
{
	List	   *items;
	bool		all;
	Oid			me;
} stmtCollect;

static void
collect_stmt_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	stmtCollect *sc = (stmtCollect *) arg;
	ListCell   *lc;
	stmtItem   *it;

	if (e->key.dbid != MyDatabaseId || e->query[0] == '\0' ||
		e->counters.calls <= 0)
		return;
	if (e->cmdtype != CMD_SELECT && e->cmdtype != CMD_UPDATE &&
		e->cmdtype != CMD_DELETE)
		return;
	if (!sc->all && e->key.userid != sc->me)
		return;
	/* one analysis per fingerprint, whoever ran it */
	foreach(lc, sc->items)
	{
		it = lfirst(lc);
		if (it->queryid == e->key.queryid)
		{
			it->calls += e->counters.calls;
			it->total_ms += e->counters.total_ms;
			return;
		}
	}
	it = palloc0(sizeof(stmtItem));
	it->queryid = e->key.queryid;
	it->calls = e->counters.calls;
	it->total_ms = e->counters.total_ms;
	it->query = pstrdup(e->query);
	sc->items = lappend(sc->items, it);
}

typedef struct analyseArgs
{
	const char *text;
	stmtAnalysis result;
} analyseArgs;

static void
analyse_guarded_fn(void *arg)
{
	analyseArgs *a = (analyseArgs *) arg;

	pfg_index_analyse(a->text, false, true, false, &a->result);
}

typedef struct costArgs
{
	const char *text;
	pfgCandidate *cand;
	double		before;
	double		after;
} costArgs;

static void
cost_guarded_fn(void *arg)
{
	costArgs   *a = (costArgs *) arg;
	Query	   *q = pfg_index_analyse_one(a->text, false);

	if (q == NULL)
		elog(ERROR, "statement no longer analyses");
	a->before = pfg_hypo_plan(q, a->text, NULL)->planTree->total_cost;
	a->after = pfg_hypo_plan(q, a->text, a->cand)->planTree->total_cost;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static double
row_saving(adviceRow *r, double *before, double *after, int64 *calls,
		   double *impact)
{
	ListCell   *ls,
			   *lb,
			   *la;
	double		wb = 0,
				wa = 0,
				imp = 0;
	int64		n = 0;

	forthree(ls, r->stmts, lb, r->before, la, r->after)
	{
		stmtItem   *s = lfirst(ls);
		double		b = *(double *) lfirst(lb);
		double		a = *(double *) lfirst(la);

		wb += s->calls * b;
		wa += s->calls * a;
		n += s->calls;
		if (b > 0)
			imp += s->total_ms * (1.0 - a / b);
	}
	if (before)
		*before = n ? wb / n : 0;
	if (after)
		*after = n ? wa / n : 0;
	if (calls)
		*calls = n;
	if (impact)
		*impact = imp;
	return wb - wa;
}

static int
cmp_rows(const ListCell *a, const ListCell *b)
{
	double		x = row_saving(lfirst(a), NULL, NULL, NULL, NULL);
	double		y = row_saving(lfirst(b), NULL, NULL, NULL, NULL);

	return (x < y) - (x > y);
}

static double *
dbl(double v)
{
	double	   *p = palloc(sizeof(double));

	*p = v;
	return p;
}

/*---- closed loop: remembered advice, applied or not ----*/

static void
qid_collect_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	qidStats   *qs = (qidStats *) arg;

	if (e->key.dbid != MyDatabaseId)
		return;
	if (qs->n == qs->cap)
	{
		qs->cap = qs->cap ? qs->cap * 2 : 64;
		qs->items = qs->items ? repalloc(qs->items, sizeof(qidStat) * qs->cap) :
			palloc(sizeof(qidStat) * qs->cap);
	}
	qs->items[qs->n].queryid = e->key.queryid;
	qs->items[qs->n].calls = e->counters.calls;
	qs->items[qs->n].total_ms = e->counters.total_ms;
	qs->n++;
}

static int
cmp_qidstat(const void *a, const void *b)
{
	uint64		x = ((const qidStat *) a)->queryid;
	uint64		y = ((const qidStat *) b)->queryid;

	return (x > y) - (x < y);
}

/*
 * qid_stats_build
 *		The cumulative calls and time of every query id of this database,
 *		summed over users and nesting levels, sorted by query id.
 */
static void
qid_stats_build(qidStats *qs)
{
	int			i,
				j;

	memset(qs, 0, sizeof(*qs));
	pfg_store_foreach_statement(qid_collect_cb, qs);
	if (qs->n == 0)
		return;
	qsort(qs->items, qs->n, sizeof(qidStat), cmp_qidstat);
	for (i = 1, j = 0; i < qs->n; i++)
	{
		if (qs->items[i].queryid == qs->items[j].queryid)
		{
			qs->items[j].calls += qs->items[i].calls;
			qs->items[j].total_ms += qs->items[i].total_ms;
		}
		else
			qs->items[++j] = qs->items[i];
	}
	qs->n = j + 1;
}

static const qidStat *
qid_find(const qidStats *qs, uint64 queryid)
{
	qidStat		key;

	if (qs->n == 0)
		return NULL;
	key.queryid = queryid;
	return bsearch(&key, qs->items, qs->n, sizeof(qidStat), cmp_qidstat);
}

/*
 * advice_remember
 *		Remember (or refresh) a 'missing' advice with a snapshot of its
 *		statements' counters, and return their mean time per call so far
 *		(-1 when none ran).  An entry still marked applied is being advised
 *		again, so its index is gone: it goes back to plain advice.  When the
 *		table is full, the oldest advice not applied makes room (or else the
 *		oldest applied one): store_advice.c.
 */
static double
advice_remember(const pfgCandidate *c, const int64 *ids, int nq,
				const qidStats *qs, double before, double after)
{
	pfgAdviceEntry ne;
	double		sum_ms = 0;
	int64		sum_calls = 0;
	int			i;

	memset(&ne, 0, sizeof(ne));
	ne.used = true;
	ne.dbid = MyDatabaseId;
	ne.relid = c->relid;
	ne.ncols = c->ncols;
	memcpy(ne.attnos, c->attnos, sizeof(ne.attnos));
	memcpy(ne.desc, c->desc, sizeof(ne.desc));
	memcpy(ne.nulls_first, c->nulls_first, sizeof(ne.nulls_first));
	ne.nq = Min(nq, PFG_ADVICE_QIDS);
	for (i = 0; i < ne.nq; i++)
	{
		const qidStat *st = qid_find(qs, (uint64) ids[i]);

		ne.queryids[i] = (uint64) ids[i];
		ne.calls[i] = st ? st->calls : 0;
		ne.total_ms[i] = st ? st->total_ms : 0;
		sum_calls += ne.calls[i];
		sum_ms += ne.total_ms[i];
	}
	ne.est_cost_before = before;
	ne.est_cost_after = after;
	ne.est_improvement = before > 0 ? 1.0 - after / before : 0.0;
	ne.advised_at = GetCurrentTimestamp();

	pfg_advice_remember(&ne);
	return sum_calls > 0 ? sum_ms / sum_calls : -1;
}

/*
 * advice_emit_applied
 *		The rows of remembered advice of this database whose index now
 *		exists (a valid, non-partial btree index whose key starts with the
 *		advised columns), with the mean time per call of the advised
 *		statements before the advice and since.  On the way, advice on a
 *		table that is gone is forgotten, and advice whose index was dropped
 *		goes back to plain advice.  A caller without pg_read_all_stats sees
 *		only advice on tables it may read.  Long (about 165 lines): most of it
 *		is the 20 columns of the row, in the view's order.
 */
static void
advice_emit_applied(ReturnSetInfo *rsinfo, bool all, const qidStats *qs)
{
	pfgAdviceEntry *copy;
	int			ncopy = 0;
	int			i;
	TimestampTz stats_reset;

	stats_reset = pfg_store_stats_reset();
	ncopy = pfg_advice_copy(MyDatabaseId, &copy);

	for (i = 0; i < ncopy; i++)
	{
		pfgAdviceEntry *e = &copy[i];
		Relation	rel = NULL;
		Relation	irel;
		Oid			idx = InvalidOid;
		bool		gone = true;
		pfgCandidate c;
		Datum		values[20];
		bool		nulls[20];
		Datum	   *cols;
		Datum	   *qids;
		int			j,
					k;
		int64		calls_now = 0,
					before_calls = 0,
					after_calls = 0;
		double		before_ms = 0,
					after_ms = 0,
					mean_before,
					mean_after;
		bool		restarted = (stats_reset > e->advised_at);
		int64		index_bytes = 0;
		char	   *idxname;

		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(e->relid)))
			rel = try_relation_open(e->relid, AccessShareLock);
		if (rel != NULL)
		{
			char		relkind = rel->rd_rel->relkind;

			if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW)
			{
				gone = false;
				idx = pfg_hypo_covering_index(rel, e->ncols, e->attnos);
			}
			relation_close(rel, AccessShareLock);
		}

		/* bring the shared entry up to date */
		if (gone || (OidIsValid(idx) != e->applied) ||
			(OidIsValid(idx) && idx != e->applied_index))
		{
			pfg_advice_set_applied(e, gone, idx);
		}
		if (gone || !OidIsValid(idx))
			continue;
		if (!all && pg_class_aclcheck(e->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			continue;

		/* before: the snapshot; after: what the statements added since */
		for (k = 0; k < e->nq; k++)
		{
			const qidStat *st = qid_find(qs, e->queryids[k]);
			int64		nc = st ? st->calls : 0;
			double		nt = st ? st->total_ms : 0;

			calls_now += nc;
			before_calls += e->calls[k];
			before_ms += e->total_ms[k];
			if (restarted || nc < e->calls[k])
			{
				/* counters restarted (reset or eviction) since the advice */
				after_calls += nc;
				after_ms += nt;
			}
			else
			{
				after_calls += nc - e->calls[k];
				after_ms += nt - e->total_ms[k];
			}
		}
		mean_before = before_calls > 0 ? before_ms / before_calls : -1;
		mean_after = after_calls > 0 ? Max(after_ms, 0) / after_calls : -1;

		irel = try_relation_open(idx, AccessShareLock);
		if (irel != NULL)
		{
			index_bytes = (int64) RelationGetNumberOfBlocks(irel) * BLCKSZ;
			relation_close(irel, AccessShareLock);
		}
		idxname = get_rel_name(idx);
		if (idxname == NULL)
			continue;

		memset(&c, 0, sizeof(c));
		c.relid = e->relid;
		c.ncols = e->ncols;
		memcpy(c.attnos, e->attnos, sizeof(c.attnos));
		memcpy(c.desc, e->desc, sizeof(c.desc));
		memcpy(c.nulls_first, e->nulls_first, sizeof(c.nulls_first));

		memset(nulls, 0, sizeof(nulls));
		cols = palloc(sizeof(Datum) * c.ncols);
		for (j = 0; j < c.ncols; j++)
		{
			char	   *att = get_attname(c.relid, c.attnos[j], true);

			cols[j] = CStringGetTextDatum(att ? att : "?");
		}
		qids = palloc(sizeof(Datum) * Max(e->nq, 1));
		for (j = 0; j < e->nq; j++)
			qids[j] = Int64GetDatum((int64) e->queryids[j]);

		j = 0;
		values[j++] = CStringGetTextDatum("missing");
		values[j++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(c.relid)));
		values[j++] = CStringGetTextDatum(get_rel_name(c.relid));
		nulls[j++] = true;		/* index_name: see applied_index */
		values[j++] = PointerGetDatum(construct_array(cols, c.ncols, TEXTOID,
													  -1, false, TYPALIGN_INT));
		values[j++] = CStringGetTextDatum(pfg_hypo_ddl(&c));
		if (mean_after >= 0 && mean_before > 0)
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s ran %lld times since the advice at a mean of %.3f ms per call, against %.3f ms before (%+.0f%%)",
													   quote_identifier(idxname),
													   pfg_hypo_columns_sql(&c),
													   e->nq, e->nq == 1 ? "" : "s",
													   (long long) after_calls,
													   mean_after, mean_before,
													   100.0 * (mean_after / mean_before - 1.0)));
		else
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s did not run since the advice",
													   quote_identifier(idxname),
													   pfg_hypo_columns_sql(&c),
													   e->nq, e->nq == 1 ? "" : "s"));
		values[j++] = PointerGetDatum(construct_array(qids, e->nq, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[j++] = Int64GetDatum(calls_now);
		values[j++] = Float8GetDatum(e->est_cost_before);
		values[j++] = Float8GetDatum(e->est_cost_after);
		values[j++] = Float8GetDatum(e->est_improvement);
		values[j++] = Int64GetDatum(index_bytes);
		/* impact_ms: the time the index saved so far (negative: lost) */
		if (mean_after >= 0 && mean_before >= 0)
			values[j++] = Float8GetDatum(after_calls * (mean_before - mean_after));
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum(true);
		values[j++] = CStringGetTextDatum(idxname);
		if (mean_before >= 0)
			values[j++] = Float8GetDatum(mean_before);
		else
			nulls[j++] = true;
		if (mean_after >= 0)
			values[j++] = Float8GetDatum(mean_after);
		else
			nulls[j++] = true;
		values[j++] = Int64GetDatum(after_calls);
		if (mean_after >= 0 && mean_before > 0)
			values[j++] = Float8GetDatum(1.0 - mean_after / mean_before);
		else
			nulls[j++] = true;
		Assert(j == 20);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
}

/*
 * perfguard_index_advice_missing
 *		The 'missing' rows of perfguard.index_advice (see the file header).
 *		Long (about 195 lines): prove, merge, then build the 20 columns of
 *		each row, three phases that share the row list.
 */
Datum
perfguard_index_advice_missing(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	stmtCollect sc;
	qidStats	qs;
	List	   *rows = NIL;
	ListCell   *lc,
			   *lc2;
	MemoryContext keepcxt = CurrentMemoryContext;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);

	memset(&sc, 0, sizeof(sc));
	sc.me = GetUserId();
	sc.all = pfg_report_sees_all();
	pfg_store_foreach_statement(collect_stmt_cb, &sc);

	/* prove candidates statement by statement */
	foreach(lc, sc.items)
	{
		stmtItem   *it = lfirst(lc);
		analyseArgs a;

		memset(&a, 0, sizeof(a));
		a.text = it->query;
		if (!pfg_report_guarded(analyse_guarded_fn, &a, keepcxt))
			continue;
		foreach(lc2, a.result.proven)
		{
			provenIndex *p = lfirst(lc2);
			adviceRow  *r = NULL;
			ListCell   *lc3;

			foreach(lc3, rows)
			{
				adviceRow  *x = lfirst(lc3);

				if (pfg_hypo_same_columns(&x->cand, &p->cand))
				{
					r = x;
					break;
				}
			}
			if (r == NULL)
			{
				r = palloc0(sizeof(adviceRow));
				r->cand = p->cand;
				r->scan_desc = p->scan_desc;
				rows = lappend(rows, r);
			}
			r->stmts = lappend(r->stmts, it);
			r->before = lappend(r->before, dbl(p->cost_before));
			r->after = lappend(r->after, dbl(p->cost_after));
		}
	}

	/*
	 * Merge a candidate into a longer one that starts with its columns, when
	 * the longer index still proves itself for each of its statements.
	 */
	foreach(lc, rows)
	{
		adviceRow  *shorter = lfirst(lc);

		foreach(lc2, rows)
		{
			adviceRow  *longer = lfirst(lc2);
			List	   *nb = NIL,
					   *na = NIL;
			ListCell   *ls;
			bool		ok = true;

			if (longer->merged || longer == shorter ||
				!pfg_hypo_is_prefix(&shorter->cand, &longer->cand))
				continue;
			foreach(ls, shorter->stmts)
			{
				costArgs	ca;

				memset(&ca, 0, sizeof(ca));
				ca.text = ((stmtItem *) lfirst(ls))->query;
				ca.cand = &longer->cand;
				if (!pfg_report_guarded(cost_guarded_fn, &ca, keepcxt) ||
					ca.before <= 0 ||
					ca.after > ca.before * (1.0 - PFG_MIN_IMPROVEMENT))
				{
					ok = false;
					break;
				}
				nb = lappend(nb, dbl(ca.before));
				na = lappend(na, dbl(ca.after));
			}
			if (!ok)
				continue;
			longer->stmts = list_concat(longer->stmts, shorter->stmts);
			longer->before = list_concat(longer->before, nb);
			longer->after = list_concat(longer->after, na);
			shorter->merged = true;
			break;
		}
	}

	list_sort(rows, cmp_rows);

	/* the counters the remembered advice compares against */
	qid_stats_build(&qs);

	foreach(lc, rows)
	{
		adviceRow  *r = lfirst(lc);
		Datum		values[20];
		bool		nulls[20];
		double		mean_before;
		Datum	   *cols;
		Datum	   *qids;
		int64	   *ids;
		int			i,
					nq;
		double		before,
					after,
					impact;
		int64		calls;
		Relation	rel;
		BlockNumber pages;
		int			height;
		double		tuples;

		if (r->merged)
			continue;
		row_saving(r, &before, &after, &calls, &impact);

		/* the size of the index as the planner saw it, from current stats */
		rel = try_relation_open(r->cand.relid, AccessShareLock);
		if (rel == NULL)
			continue;
		tuples = Max(rel->rd_rel->reltuples, 0);
		relation_close(rel, AccessShareLock);
		pfg_hypo_estimate_size(tuples, r->cand.keywidth, &pages, &height);

		memset(nulls, 0, sizeof(nulls));
		cols = palloc(sizeof(Datum) * r->cand.ncols);
		for (i = 0; i < r->cand.ncols; i++)
			cols[i] = CStringGetTextDatum(get_attname(r->cand.relid,
													  r->cand.attnos[i], false));
		nq = list_length(r->stmts);
		ids = palloc(sizeof(int64) * nq);
		i = 0;
		foreach(lc2, r->stmts)
			ids[i++] = (int64) ((stmtItem *) lfirst(lc2))->queryid;
		qsort(ids, nq, sizeof(int64), cmp_int64);
		qids = palloc(sizeof(Datum) * nq);
		for (i = 0; i < nq; i++)
			qids[i] = Int64GetDatum(ids[i]);

		i = 0;
		values[i++] = CStringGetTextDatum("missing");
		values[i++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(r->cand.relid)));
		values[i++] = CStringGetTextDatum(get_rel_name(r->cand.relid));
		nulls[i++] = true;		/* index_name: the server picks one */
		values[i++] = PointerGetDatum(construct_array(cols, r->cand.ncols, TEXTOID,
													  -1, false, TYPALIGN_INT));
		values[i++] = CStringGetTextDatum(pfg_hypo_ddl(&r->cand));
		values[i++] = CStringGetTextDatum(psprintf("%s; a hypothetical btree index on (%s) lowers the planner's estimated cost of %d statement%s by %.0f%%",
												   r->scan_desc,
												   pfg_hypo_columns_sql(&r->cand),
												   nq, nq == 1 ? "" : "s",
												   before > 0 ? 100.0 * (1.0 - after / before) : 0.0));
		values[i++] = PointerGetDatum(construct_array(qids, nq, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[i++] = Int64GetDatum(calls);
		values[i++] = Float8GetDatum(before);
		values[i++] = Float8GetDatum(after);
		values[i++] = Float8GetDatum(before > 0 ? 1.0 - after / before : 0.0);
		values[i++] = Int64GetDatum((int64) pages * BLCKSZ);
		values[i++] = Float8GetDatum(impact);
		/* closed loop: remember it; not applied, as no index serves it */
		mean_before = advice_remember(&r->cand, ids, nq, &qs, before, after);
		values[i++] = BoolGetDatum(false);
		nulls[i++] = true;		/* applied_index */
		if (mean_before >= 0)
			values[i++] = Float8GetDatum(mean_before);
		else
			nulls[i++] = true;
		nulls[i++] = true;		/* mean_ms_after */
		nulls[i++] = true;		/* calls_after */
		nulls[i++] = true;		/* actual_improvement */
		Assert(i == 20);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/* remembered advice whose index now exists */
	advice_emit_applied(rsinfo, sc.all, &qs);
	return (Datum) 0;
}

/*---- perfguard.advise(query) ----*/

typedef struct adviseErrCtx
{
	const char *text;
} adviseErrCtx;

/*
 * advise_error_callback
 *		Point a syntax error's position into the analysed text (not the
 *		calling statement) and say what advise() accepts.
 */
static void
advise_error_callback(void *arg)
{
	adviseErrCtx *ctx = (adviseErrCtx *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(ctx->text);
	}
	if (geterrcode() == ERRCODE_SYNTAX_ERROR)
		errhint("perfguard.advise() takes one SELECT, UPDATE or DELETE statement; write parameters as $1, $2, ...");
	errcontext("statement analysed by perfguard.advise()");
}

/*
 * perfguard_advise
 *		Plan findings and proven index candidates for one statement, without
 *		running it.  Columns: kind, relation, detail, ddl, est_cost_before,
 *		est_cost_after, est_improvement.
 */
Datum
perfguard_advise(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *qtext;
	const char *p;
	stmtAnalysis res;
	ErrorContextCallback errcb;
	adviseErrCtx ctx;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must not be null"),
				 errhint("Pass the text of one SELECT, UPDATE or DELETE statement.")));
	qtext = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (p = qtext; *p && isspace((unsigned char) *p); p++)
		;
	if (*p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must not be empty"),
				 errhint("Pass the text of one SELECT, UPDATE or DELETE statement.")));
	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	ctx.text = qtext;
	errcb.callback = advise_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	pfg_index_analyse(qtext, true, true, true, &res);
	error_context_stack = errcb.previous;

	foreach(lc, res.findings)
	{
		planFinding *f = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, true, false, true, true};

		values[0] = CStringGetTextDatum(f->kind);
		values[1] = CStringGetTextDatum(f->relation);
		values[2] = CStringGetTextDatum(f->detail);
		values[4] = Float8GetDatum(res.cost_before);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	foreach(lc, res.proven)
	{
		provenIndex *pi = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};
		double		imp = 1.0 - pi->cost_after / pi->cost_before;

		values[0] = CStringGetTextDatum("missing_index");
		values[1] = CStringGetTextDatum(pfg_qualified_rel(pi->cand.relid));
		values[2] = CStringGetTextDatum(psprintf("%s; a hypothetical btree index on (%s) lowers the estimated cost by %.0f%%",
												 pi->scan_desc,
												 pfg_hypo_columns_sql(&pi->cand),
												 100.0 * imp));
		values[3] = CStringGetTextDatum(pfg_hypo_ddl(&pi->cand));
		values[4] = Float8GetDatum(pi->cost_before);
		values[5] = Float8GetDatum(pi->cost_after);
		values[6] = Float8GetDatum(imp);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	foreach(lc, res.tried)
	{
		char	   *rel = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, true, false, true, true};

		values[0] = CStringGetTextDatum("no_index_helps");
		values[1] = CStringGetTextDatum(rel);
		values[2] = CStringGetTextDatum(psprintf("no single btree index on %s lowers the estimated cost by %.0f%% or more",
												 rel, 100.0 * PFG_MIN_IMPROVEMENT));
		values[4] = Float8GetDatum(res.cost_before);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

