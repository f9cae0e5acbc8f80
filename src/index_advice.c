/*-------------------------------------------------------------------------
 *
 * index_advice.c
 *		The 'missing' rows of perfguard.index_advice, proven over the
 *		statements of the store, with their closed loop; and
 *		perfguard.advise(query) for one statement.
 *
 * Everything here runs at report time; nothing touches the hot path.  Each
 * statement of the store (of this database, that the caller may see) is
 * proven in one of two ways:
 *	- with execution evidence: when its plan was sampled, the backend that
 *	  ran it proved the candidates with that execution's values
 *	  (index_evidence.c); the outcome is read from store_evidence.c (the
 *	  tables and columns are checked again, not the costs);
 *	- else on its generic plan, by index_candidates.c, here.
 * Each statement is handled in a guarded subtransaction (report.c), so a
 * statement that fails (a table dropped, a text that no longer parses or
 * was truncated) is skipped, and in a memory context of its own, reset
 * after it: only the proven indexes are copied out, so the report's memory
 * grows with the advice, not with the statements.  Across statements,
 * identical candidates are merged, a candidate is merged into a wider one
 * that could serve it (its columns are a leading prefix of the wider one's,
 * or the wider one leads with the same column and holds all of its filter
 * columns) when the wider index, planned for the narrower one's
 * statements, still proves itself for each of them, and a partition's
 * candidate is merged into its partitioned
 * table's when that one has the same columns (its index builds the
 * partition's).
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
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "index_candidates.h"
#include "report.h"
#include "scope.h"
#include "store.h"
#include "store_advice.h"
#include "store_evidence.h"

PG_FUNCTION_INFO_V1(perfguard_index_advice_missing);
PG_FUNCTION_INFO_V1(perfguard_advise);

/* Columns of perfguard._index_advice_missing() */
#define ADVICE_NCOLS			21
/* One index for several: at most this times a statement's own best cost. */
#define PFG_CONSOLIDATE_SLACK	1.10

/* One statement of the store, as the missing-index report sees it. */
typedef struct stmtItem
{
	uint64		queryid;		/* hash key: must be first */
	int64		calls;
	double		total_ms;
	char	   *query;
	const pfgEvidenceEntry *evidence;	/* its execution evidence, or NULL */
} stmtItem;

/* One row of the missing-index report, while merging. */
typedef struct adviceRow
{
	pfgCandidate cand;
	List	   *stmts;			/* stmtItem * served */
	List	   *before;			/* double * per statement */
	List	   *after;			/* double * per statement */
	char	   *scan_desc;
	char	   *with;			/* the other indexes of its OR, or NULL */
	int			nparts;			/* partitions of a partitioned table */
	int			nexec;			/* statements proven on a sampled execution */
	int			ngeneric;		/* statements proven on their generic plan */
	double		selectivity;	/* lowest of the sampled executions, or -1 */
	double		reltuples;
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
	HTAB	   *items;			/* stmtItem by query id */
	bool		all;
	Oid			me;
} stmtCollect;

static void
collect_stmt_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	stmtCollect *sc = (stmtCollect *) arg;
	stmtItem   *it;
	bool		found;
	uint64		qid = e->key.queryid;

	if (e->key.dbid != MyDatabaseId || e->query[0] == '\0' ||
		e->counters.calls <= 0)
		return;
	if (e->cmdtype != CMD_SELECT && e->cmdtype != CMD_UPDATE &&
		e->cmdtype != CMD_DELETE)
		return;
	if (!sc->all && e->key.userid != sc->me)
		return;
	/* one analysis per fingerprint, whoever ran it */
	it = hash_search(sc->items, &qid, HASH_ENTER, &found);
	if (found)
	{
		it->calls += e->counters.calls;
		it->total_ms += e->counters.total_ms;
		return;
	}
	it->calls = e->counters.calls;
	it->total_ms = e->counters.total_ms;
	it->query = pstrdup(e->query);
	it->evidence = NULL;
}

static int
cmp_item_qid(const void *a, const void *b)
{
	uint64		x = (*(stmtItem *const *) a)->queryid;
	uint64		y = (*(stmtItem *const *) b)->queryid;

	return (x > y) - (x < y);
}

typedef struct analyseArgs
{
	const char *text;
	const pfgEvidenceEntry *evidence;
	bool		all;
	stmtAnalysis result;
} analyseArgs;

/*
 * analyse_guarded_fn
 *		Prove one statement on its generic plan.
 */
static void
analyse_guarded_fn(void *arg)
{
	analyseArgs *a = (analyseArgs *) arg;

	pfg_index_analyse(a->text, NULL, PFG_ANALYSE_CHECK_PERMS, &a->result);
}

/*
 * evidence_guarded_fn
 *		One statement's execution evidence as proven indexes: each stored
 *		set whose table and columns still exist, that no index now serves,
 *		on tables the caller may read (or the statement is skipped, as the
 *		generic path skips statements on tables the caller cannot read).
 */
static void
evidence_guarded_fn(void *arg)
{
	analyseArgs *a = (analyseArgs *) arg;
	const pfgEvidenceEntry *ev = a->evidence;
	int			i = 0;

	memset(&a->result, 0, sizeof(a->result));
	a->result.cost_before = ev->cost_before;
	while (i < ev->nitems)
	{
		provenIndex *p = palloc0(sizeof(provenIndex));
		const pfgEvidenceItem *first = &ev->items[i];
		bool		ok = true;

		for (; i < ev->nitems && ev->items[i].set == first->set; i++)
		{
			pfgCandidate *c = &p->cand[p->ncand];
			Relation	rel;

			if (p->ncand == PFG_HYPO_MAX_SET)
			{
				ok = false;
				continue;
			}
			memset(c, 0, sizeof(pfgCandidate));
			c->key = ev->items[i].key;
			if (!ok || !pfg_hypo_fill(c))
			{
				ok = false;
				continue;
			}
			if (!a->all &&
				pg_class_aclcheck(c->key.relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			{
				memset(&a->result, 0, sizeof(a->result));
				return;
			}
			rel = relation_open(c->key.relid, AccessShareLock);
			if (OidIsValid(pfg_hypo_covering_index(rel, &c->key)))
				ok = false;		/* built since: the closed loop shows it */
			relation_close(rel, AccessShareLock);
			p->ncand++;
		}
		if (!ok || p->ncand == 0)
			continue;
		p->relid = first->key.relid;
		p->nparts = first->nparts;
		p->cost_before = ev->cost_before;
		p->cost_after = first->cost_after;
		p->reltuples = first->reltuples;
		p->plan_rows = first->selectivity >= 0 ?
			first->selectivity * first->reltuples : -1;
		p->scan_desc = pstrdup(first->scan_desc);
		a->result.proven = lappend(a->result.proven, p);
	}
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
	Query	   *q = pfg_index_parse(a->text, false, NULL);

	if (q == NULL)
		elog(ERROR, "statement no longer analyses");
	a->before = pfg_hypo_plan_cost(q, a->text, NULL, 0, NULL);
	a->after = pfg_hypo_plan_cost(q, a->text, &a->cand, 1, NULL);
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

/*
 * add_proven
 *		Add one statement's proven index (or OR set) to the rows: one row per
 *		index key, shared with the other statements that proved the same
 *		key.  Runs in the report's context; "p" lives in the statement's.
 */
static List *
add_proven(List *rows, provenIndex *p, stmtItem *it, bool execution)
{
	int			i;

	for (i = 0; i < p->ncand; i++)
	{
		adviceRow  *r = NULL;
		ListCell   *lc;

		foreach(lc, rows)
		{
			adviceRow  *x = lfirst(lc);

			if (pfg_index_key_equal(&x->cand.key, &p->cand[i].key))
			{
				r = x;
				break;
			}
		}
		if (r == NULL)
		{
			r = palloc0(sizeof(adviceRow));
			r->cand = p->cand[i];
			r->scan_desc = pstrdup(p->scan_desc);
			r->nparts = p->nparts;
			r->selectivity = -1;
			r->reltuples = p->reltuples;
			if (p->ncand > 1)
			{
				StringInfoData w;
				int			j;

				initStringInfo(&w);
				for (j = 0; j < p->ncand; j++)
					if (j != i)
						appendStringInfo(&w, "%s(%s)", w.len ? ", " : "",
										 pfg_hypo_columns_sql(&p->cand[j].key));
				r->with = w.data;
			}
			rows = lappend(rows, r);
		}
		r->stmts = lappend(r->stmts, it);
		r->before = lappend(r->before, dbl(p->cost_before));
		r->after = lappend(r->after, dbl(p->cost_after));
		if (execution)
		{
			r->nexec++;
			if (p->plan_rows >= 0 && p->reltuples > 0 &&
				(r->selectivity < 0 || p->plan_rows / p->reltuples < r->selectivity))
			{
				r->selectivity = p->plan_rows / p->reltuples;
				r->reltuples = p->reltuples;
			}
		}
		else
			r->ngeneric++;
	}
	return rows;
}

/*
 * key_on_ancestor
 *		The key of a partition's candidate as the same columns of its
 *		partitioned ancestor "to" (matched by name); false when it has none.
 */
static bool
key_on_ancestor(const pfgIndexKey *k, Oid to, pfgIndexKey *out)
{
	int			i;

	*out = *k;
	out->relid = to;
	for (i = 0; i < k->ncols; i++)
	{
		char	   *name = get_attname(k->relid, k->attnos[i], true);

		if (name == NULL)
			return false;
		out->attnos[i] = get_attnum(to, name);
		if (out->attnos[i] == InvalidAttrNumber)
			return false;
	}
	return true;
}

/*
 * fold_partitions
 *		A candidate on a partition, from a statement that names the
 *		partition itself, is folded into the same candidate on its
 *		partitioned table when that one is advised too: the parent's
 *		CREATE INDEX builds the partition's index.
 */
static void
fold_partitions(List *rows)
{
	ListCell   *lc,
			   *lc2;

	foreach(lc, rows)
	{
		adviceRow  *part = lfirst(lc);
		List	   *ancestors;

		if (part->merged || !get_rel_relispartition(part->cand.key.relid))
			continue;
		ancestors = get_partition_ancestors(part->cand.key.relid);
		foreach(lc2, rows)
		{
			adviceRow  *parent = lfirst(lc2);
			pfgIndexKey mapped;

			if (parent->merged || parent == part ||
				!list_member_oid(ancestors, parent->cand.key.relid) ||
				!key_on_ancestor(&part->cand.key, parent->cand.key.relid, &mapped) ||
				!pfg_index_key_equal(&mapped, &parent->cand.key))
				continue;
			parent->stmts = list_concat(parent->stmts, part->stmts);
			parent->before = list_concat(parent->before, part->before);
			parent->after = list_concat(parent->after, part->after);
			parent->nexec += part->nexec;
			parent->ngeneric += part->ngeneric;
			part->merged = true;
			break;
		}
	}
}

/*
 * merge_prefixes
 *		Merge a candidate into a longer one that starts with its columns,
 *		when the longer index still proves itself for each of its
 *		statements (planned again, generic: so only rows proven on generic
 *		plans are merged this way, and no member of an OR set).
 */
static void
merge_prefixes(List *rows, MemoryContext stmtcxt)
{
	ListCell   *lc,
			   *lc2;

	foreach(lc, rows)
	{
		adviceRow  *shorter = lfirst(lc);

		if (shorter->nexec > 0 || shorter->with != NULL)
			continue;
		foreach(lc2, rows)
		{
			adviceRow  *longer = lfirst(lc2);
			List	   *nb = NIL,
					   *na = NIL;
			ListCell   *ls;
			bool		ok = true;

			if (longer->merged || longer == shorter || longer->with != NULL ||
				!pfg_index_key_is_prefix(&shorter->cand.key, &longer->cand.key))
				continue;
			foreach(ls, shorter->stmts)
			{
				costArgs	ca;

				memset(&ca, 0, sizeof(ca));
				ca.text = ((stmtItem *) lfirst(ls))->query;
				ca.cand = &longer->cand;
				ok = pfg_report_guarded(cost_guarded_fn, &ca, stmtcxt) &&
					ca.before > 0 &&
					ca.after <= ca.before * (1.0 - PFG_MIN_IMPROVEMENT);
				MemoryContextReset(stmtcxt);
				if (!ok)
					break;
				nb = lappend(nb, dbl(ca.before));
				na = lappend(na, dbl(ca.after));
			}
			if (!ok)
				continue;
			longer->stmts = list_concat(longer->stmts, shorter->stmts);
			longer->before = list_concat(longer->before, nb);
			longer->after = list_concat(longer->after, na);
			longer->ngeneric += shorter->ngeneric;
			shorter->merged = true;
			break;
		}
	}
}

/* Does a key hold this column (the same expression and operator class)? */
static int
key_col_index(const pfgIndexKey *k, const pfgIndexKey *from, int col)
{
	int			j;

	for (j = 0; j < k->ncols; j++)
		if (k->attnos[j] == from->attnos[col] &&
			k->exprfunc[j] == from->exprfunc[col] &&
			k->opclass[j] == from->opclass[col])
			return j;
	return -1;
}

/* Rows that consolidate_rows may combine: generic, ascending, not an OR's. */
static bool
row_combinable(const adviceRow *r)
{
	int			i;

	if (r->merged || r->nexec > 0 || r->with != NULL)
		return false;
	for (i = 0; i < r->cand.key.ncols; i++)
		if (r->cand.key.desc[i] || r->cand.key.nulls_first[i])
			return false;
	return true;
}

/*
 * union_key
 *		One key for a group of rows: each column of theirs once, the columns
 *		that more statements filter on first (ties: in the order they first
 *		appear).  False when it would be too wide.
 */
static bool
union_key(List *group, pfgIndexKey *out)
{
	int			weight[PFG_INDEX_MAX_COLS * 4];
	pfgIndexKey all;
	ListCell   *lc;
	int			n = 0;
	int			i,
				j;

	memset(&all, 0, sizeof(all));
	memset(out, 0, sizeof(*out));
	foreach(lc, group)
	{
		adviceRow  *r = lfirst(lc);
		pfgIndexKey *k = &r->cand.key;

		all.relid = out->relid = k->relid;
		for (i = 0; i < k->ncols; i++)
		{
			j = key_col_index(&all, k, i);
			if (j < 0)
			{
				if (n == PFG_INDEX_MAX_COLS)
					return false;
				j = n++;
				all.attnos[j] = k->attnos[i];
				all.exprfunc[j] = k->exprfunc[i];
				all.opclass[j] = k->opclass[i];
				all.ncols = n;
				weight[j] = 0;
			}
			weight[j] += list_length(r->stmts);
		}
	}
	/* a stable selection sort by weight, heaviest first */
	for (i = 0; i < n; i++)
	{
		int			best = -1;

		for (j = 0; j < n; j++)
			if (weight[j] >= 0 && (best < 0 || weight[j] > weight[best]))
				best = j;
		out->attnos[i] = all.attnos[best];
		out->exprfunc[i] = all.exprfunc[best];
		out->opclass[i] = all.opclass[best];
		weight[best] = -1;
	}
	out->ncols = n;
	return true;
}

/*
 * consolidate_group
 *		Try one index for a group of rows of a table (see consolidate_rows);
 *		returns the new row when it is not one of the group's.
 */
static adviceRow *
consolidate_group(List *group, MemoryContext stmtcxt)
{
	pfgCandidate u;
	adviceRow  *target = NULL;
	adviceRow  *main = NULL;
	adviceRow  *made = NULL;
	List	   *stmts = NIL,
			   *nb = NIL,
			   *na = NIL;
	ListCell   *lc,
			   *ls,
			   *la;
	int			ngeneric = 0;

	memset(&u, 0, sizeof(u));
	if (!union_key(group, &u.key) || !pfg_hypo_fill(&u))
		return NULL;
	foreach(lc, group)
	{
		adviceRow  *r = lfirst(lc);

		if (main == NULL || list_length(r->stmts) > list_length(main->stmts))
			main = r;
		if (pfg_index_key_equal(&r->cand.key, &u.key))
			target = r;
		forboth(ls, r->stmts, la, r->after)
		{
			costArgs	ca;
			double		own = *(double *) lfirst(la);
			bool		ok;

			memset(&ca, 0, sizeof(ca));
			ca.text = ((stmtItem *) lfirst(ls))->query;
			ca.cand = &u;
			ok = pfg_report_guarded(cost_guarded_fn, &ca, stmtcxt) &&
				ca.before > 0 &&
				ca.after <= ca.before * (1.0 - PFG_MIN_IMPROVEMENT) &&
				ca.after <= own * PFG_CONSOLIDATE_SLACK;
			MemoryContextReset(stmtcxt);
			if (!ok)
				return NULL;
			stmts = lappend(stmts, lfirst(ls));
			nb = lappend(nb, dbl(ca.before));
			na = lappend(na, dbl(ca.after));
		}
		ngeneric += r->ngeneric;
	}
	if (target == NULL)
	{
		made = palloc0(sizeof(adviceRow));
		*made = *main;
		made->cand = u;
		target = made;
	}
	target->stmts = stmts;
	target->before = nb;
	target->after = na;
	target->ngeneric = ngeneric;
	target->merged = false;
	foreach(lc, group)
		if (lfirst(lc) != target)
			((adviceRow *) lfirst(lc))->merged = true;
	return made;
}

/*
 * consolidate_rows
 *		Fewer indexes for the same statements, as pg_qualstats proposes them:
 *		the rows of a table that share a column (transitively) are tried as
 *		one index holding all their columns, those more statements filter on
 *		first.  It replaces them when, for every one of their statements, it
 *		still lowers the cost by PFG_MIN_IMPROVEMENT and costs at most
 *		PFG_CONSOLIDATE_SLACK times the statement's own best index.  Only
 *		rows proven on generic plans, with ascending keys, are combined.
 *		Returns the rows, with the new one appended if one was made.
 */
static List *
consolidate_rows(List *rows, MemoryContext stmtcxt)
{
	List	   *pending = NIL;
	ListCell   *lc;

	foreach(lc, rows)
		if (row_combinable(lfirst(lc)))
			pending = lappend(pending, lfirst(lc));

	while (pending != NIL)
	{
		List	   *group = list_make1(linitial(pending));
		bool		grew = true;

		pending = list_delete_first(pending);
		/* the rows of the same table that share a column with the group */
		while (grew)
		{
			grew = false;
			foreach(lc, pending)
			{
				adviceRow  *r = lfirst(lc);
				ListCell   *lg;
				bool		shares = false;

				foreach(lg, group)
				{
					adviceRow  *g = lfirst(lg);
					int			i;

					if (g->cand.key.relid != r->cand.key.relid)
						continue;
					for (i = 0; i < r->cand.key.ncols && !shares; i++)
						shares = key_col_index(&g->cand.key, &r->cand.key, i) >= 0;
					if (shares)
						break;
				}
				if (shares)
				{
					group = lappend(group, r);
					pending = foreach_delete_current(pending, lc);
					grew = true;
				}
			}
		}
		if (list_length(group) >= 2)
		{
			adviceRow  *made = consolidate_group(group, stmtcxt);

			if (made)
				rows = lappend(rows, made);
		}
	}
	return rows;
}

/*
 * evidence_name
 *		What a row rests on: 'execution' (every statement proven with the
 *		values of a sampled execution), 'generic_plan', or both.
 */
static const char *
evidence_name(int nexec, int ngeneric)
{
	if (nexec > 0 && ngeneric > 0)
		return "execution, generic_plan";
	return nexec > 0 ? "execution" : "generic_plan";
}

/* The key columns as the columns array shows them ("b DESC", "lower(a)"). */
static Datum
key_columns_array(const pfgIndexKey *k)
{
	Datum	   *cols = palloc(sizeof(Datum) * Max(k->ncols, 1));
	int			i;

	for (i = 0; i < k->ncols; i++)
		cols[i] = CStringGetTextDatum(pfg_hypo_column_sql(k, i));
	return PointerGetDatum(construct_array(cols, k->ncols, TEXTOID, -1, false,
										   TYPALIGN_INT));
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
advice_remember(const pfgIndexKey *key, const int64 *ids, int nq,
				const qidStats *qs, double before, double after,
				pfgEvidenceKind evidence)
{
	pfgAdviceEntry ne;
	double		sum_ms = 0;
	int64		sum_calls = 0;
	int			i;

	memset(&ne, 0, sizeof(ne));
	ne.used = true;
	ne.dbid = MyDatabaseId;
	ne.key = *key;
	ne.evidence = evidence;
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
		Datum		values[ADVICE_NCOLS];
		bool		nulls[ADVICE_NCOLS];
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

		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(e->key.relid)))
			rel = try_relation_open(e->key.relid, AccessShareLock);
		if (rel != NULL)
		{
			char		relkind = rel->rd_rel->relkind;

			if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW ||
				relkind == RELKIND_PARTITIONED_TABLE)
			{
				gone = false;
				idx = pfg_hypo_covering_index(rel, &e->key);
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
		if (!all && pg_class_aclcheck(e->key.relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
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

		memset(nulls, 0, sizeof(nulls));
		qids = palloc(sizeof(Datum) * Max(e->nq, 1));
		for (j = 0; j < e->nq; j++)
			qids[j] = Int64GetDatum((int64) e->queryids[j]);

		j = 0;
		values[j++] = CStringGetTextDatum("missing");
		values[j++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(e->key.relid)));
		values[j++] = CStringGetTextDatum(get_rel_name(e->key.relid));
		nulls[j++] = true;		/* index_name: see applied_index */
		values[j++] = key_columns_array(&e->key);
		values[j++] = CStringGetTextDatum(pfg_hypo_ddl(&e->key));
		if (mean_after >= 0 && mean_before > 0)
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s ran %lld times since the advice at a mean of %.3f ms per call, against %.3f ms before (%+.0f%%)",
													   quote_identifier(idxname),
													   pfg_hypo_columns_sql(&e->key),
													   e->nq, e->nq == 1 ? "" : "s",
													   (long long) after_calls,
													   mean_after, mean_before,
													   100.0 * (mean_after / mean_before - 1.0)));
		else
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s did not run since the advice",
													   quote_identifier(idxname),
													   pfg_hypo_columns_sql(&e->key),
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
		values[j++] = CStringGetTextDatum(e->evidence == PFG_EVIDENCE_EXECUTION ?
										  "execution" : "generic_plan");
		Assert(j == ADVICE_NCOLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
}

/*
 * missing_reason
 *		The reason text of a 'missing' row.
 */
static char *
missing_reason(adviceRow *r, int nq, double before, double after)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, "%s; a hypothetical btree index on (%s) ",
					 r->scan_desc, pfg_hypo_columns_sql(&r->cand.key));
	if (r->with)
		appendStringInfo(&b, "together with the one on %s (a BitmapOr for the OR) ",
						 r->with);
	appendStringInfo(&b, "lowers the planner's estimated cost of %d statement%s by %.0f%%",
					 nq, nq == 1 ? "" : "s",
					 before > 0 ? 100.0 * (1.0 - after / before) : 0.0);
	if (r->nexec > 0)
	{
		appendStringInfo(&b, "; proven with the values of %s sampled execution%s",
						 r->nexec == 1 ? "a" : "their", r->nexec == 1 ? "" : "s");
		if (r->selectivity >= 0)
			appendStringInfo(&b, ", whose scan kept %.2g%% of about %.0f rows",
							 100.0 * r->selectivity, r->reltuples);
	}
	if (r->cand.partitioned)
		appendStringInfoString(&b, "; one index on the partitioned table, built on each of its partitions: CREATE INDEX on it cannot be CONCURRENTLY and blocks writes while it builds; to avoid that, CREATE INDEX ON ONLY the table, CREATE INDEX CONCURRENTLY on each partition, then ALTER INDEX ... ATTACH PARTITION each one");
	return b.data;
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
	HASHCTL		hctl;
	HASH_SEQ_STATUS hs;
	stmtItem  **items;
	stmtItem   *it;
	int			nitems = 0;
	int			i;
	pfgEvidenceEntry *evidence;
	int			nevidence;
	TimestampTz horizon;
	List	   *rows = NIL;
	ListCell   *lc,
			   *lc2;
	MemoryContext keepcxt = CurrentMemoryContext;
	MemoryContext stmtcxt;
	MemoryContext rowcxt;
	bool		track_memory = message_level_is_interesting(DEBUG1);
	Size		peak_mem = 0;
	int			nexec = 0;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);

	memset(&sc, 0, sizeof(sc));
	sc.me = GetUserId();
	sc.all = pfg_report_sees_all();
	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(uint64);
	hctl.entrysize = sizeof(stmtItem);
	hctl.hcxt = keepcxt;
	sc.items = hash_create("perfguard index advice statements", 256, &hctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	pfg_store_foreach_statement(collect_stmt_cb, &sc);

	/* in query id order, so that the report does not depend on the hash */
	items = palloc(sizeof(stmtItem *) * Max(hash_get_num_entries(sc.items), 1));
	hash_seq_init(&hs, sc.items);
	while ((it = hash_seq_search(&hs)) != NULL)
		items[nitems++] = it;
	qsort(items, nitems, sizeof(stmtItem *), cmp_item_qid);

	/* execution evidence, when recent: proven within the history kept */
	nevidence = pfg_evidence_copy(MyDatabaseId, &evidence);
	horizon = GetCurrentTimestamp() - (TimestampTz) PFG_WINDOWS * pfg_window * 1000;
	for (i = 0; i < nevidence; i++)
	{
		uint64		qid = evidence[i].queryid;

		if (evidence[i].proven_at < horizon)
			continue;
		it = hash_search(sc.items, &qid, HASH_FIND, NULL);
		if (it != NULL)
			it->evidence = &evidence[i];
	}

	/* prove candidates statement by statement, each in its own context */
	stmtcxt = AllocSetContextCreate(keepcxt, "perfguard index advice statement",
									ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < nitems; i++)
	{
		analyseArgs a;
		bool		ok;

		it = items[i];
		if (it->evidence)
			nexec++;
		memset(&a, 0, sizeof(a));
		a.text = it->query;
		a.evidence = it->evidence;
		a.all = sc.all;
		ok = pfg_report_guarded(it->evidence ? evidence_guarded_fn :
								analyse_guarded_fn, &a, stmtcxt);
		if (ok)
		{
			foreach(lc, a.result.proven)
				rows = add_proven(rows, lfirst(lc), it, it->evidence != NULL);
		}
		if (track_memory)
			peak_mem = Max(peak_mem, MemoryContextMemAllocated(TopMemoryContext, true));
		MemoryContextReset(stmtcxt);
	}

	merge_prefixes(rows, stmtcxt);
	rows = consolidate_rows(rows, stmtcxt);
	fold_partitions(rows);
	MemoryContextDelete(stmtcxt);

	list_sort(rows, cmp_rows);

	/* the counters the remembered advice compares against */
	qid_stats_build(&qs);

	/* each row's text is built in a context reset after it */
	rowcxt = AllocSetContextCreate(keepcxt, "perfguard index advice row",
								   ALLOCSET_DEFAULT_SIZES);
	foreach(lc, rows)
	{
		adviceRow  *r = lfirst(lc);
		Datum		values[ADVICE_NCOLS];
		bool		nulls[ADVICE_NCOLS];
		double		mean_before;
		Datum	   *qids;
		int64	   *ids;
		int			nq;
		double		before,
					after,
					impact;
		int64		calls;
		BlockNumber pages;
		int			height;
		double		tuples;

		if (r->merged)
			continue;
		MemoryContextReset(rowcxt);
		MemoryContextSwitchTo(rowcxt);
		row_saving(r, &before, &after, &calls, &impact);

		/* the size of the index from current statistics (the planner's) */
		tuples = pfg_hypo_rel_tuples(r->cand.key.relid);
		if (tuples < 0)
		{
			MemoryContextSwitchTo(keepcxt);
			continue;			/* dropped since */
		}
		pfg_hypo_estimate_size(tuples, r->cand.keywidth, &pages, &height);

		memset(nulls, 0, sizeof(nulls));
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
		values[i++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(r->cand.key.relid)));
		values[i++] = CStringGetTextDatum(get_rel_name(r->cand.key.relid));
		nulls[i++] = true;		/* index_name: the server picks one */
		values[i++] = key_columns_array(&r->cand.key);
		values[i++] = CStringGetTextDatum(pfg_hypo_ddl(&r->cand.key));
		values[i++] = CStringGetTextDatum(missing_reason(r, nq, before, after));
		values[i++] = PointerGetDatum(construct_array(qids, nq, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[i++] = Int64GetDatum(calls);
		values[i++] = Float8GetDatum(before);
		values[i++] = Float8GetDatum(after);
		values[i++] = Float8GetDatum(before > 0 ? 1.0 - after / before : 0.0);
		values[i++] = Int64GetDatum((int64) pages * BLCKSZ);
		values[i++] = Float8GetDatum(impact);
		/* closed loop: remember it; not applied, as no index serves it */
		mean_before = advice_remember(&r->cand.key, ids, nq, &qs, before, after,
									  r->nexec > 0 ? PFG_EVIDENCE_EXECUTION :
									  PFG_EVIDENCE_GENERIC);
		values[i++] = BoolGetDatum(false);
		nulls[i++] = true;		/* applied_index */
		if (mean_before >= 0)
			values[i++] = Float8GetDatum(mean_before);
		else
			nulls[i++] = true;
		nulls[i++] = true;		/* mean_ms_after */
		nulls[i++] = true;		/* calls_after */
		nulls[i++] = true;		/* actual_improvement */
		values[i++] = CStringGetTextDatum(evidence_name(r->nexec, r->ngeneric));
		Assert(i == ADVICE_NCOLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(keepcxt);
	}

	/* remembered advice whose index now exists */
	MemoryContextSwitchTo(rowcxt);
	advice_emit_applied(rsinfo, sc.all, &qs);
	MemoryContextSwitchTo(keepcxt);
	MemoryContextDelete(rowcxt);

	if (track_memory)
	{
		peak_mem = Max(peak_mem, MemoryContextMemAllocated(TopMemoryContext, true));
		elog(DEBUG1, "perfguard: index_advice: %d statements, %d with execution evidence, %d rows; memory peak %zu kB",
			 nitems, nexec, list_length(rows), peak_mem / 1024);
	}
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
	pfg_index_analyse(qtext, NULL,
					  PFG_ANALYSE_STRICT | PFG_ANALYSE_CHECK_PERMS | PFG_ANALYSE_FINDINGS,
					  &res);
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
		double		imp = 1.0 - pi->cost_after / pi->cost_before;
		int			i;

		for (i = 0; i < pi->ncand; i++)
		{
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};
			StringInfoData with;
			int			j;

			initStringInfo(&with);
			for (j = 0; j < pi->ncand; j++)
				if (j != i)
					appendStringInfo(&with, "%s(%s)", with.len ? ", " : "",
									 pfg_hypo_columns_sql(&pi->cand[j].key));
			values[0] = CStringGetTextDatum("missing_index");
			values[1] = CStringGetTextDatum(pfg_qualified_rel(pi->relid));
			values[2] = CStringGetTextDatum(psprintf("%s; a hypothetical btree index on (%s)%s%s%s lowers the estimated cost by %.0f%%",
													 pi->scan_desc,
													 pfg_hypo_columns_sql(&pi->cand[i].key),
													 with.len ? " together with the one on " : "",
													 with.data,
													 with.len ? " (a BitmapOr for the OR)" : "",
													 100.0 * imp));
			values[3] = CStringGetTextDatum(pfg_hypo_ddl(&pi->cand[i].key));
			values[4] = Float8GetDatum(pi->cost_before);
			values[5] = Float8GetDatum(pi->cost_after);
			values[6] = Float8GetDatum(imp);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
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

