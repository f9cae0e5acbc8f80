/*-------------------------------------------------------------------------
 *
 * hypo_index.c
 *		Hypothetical btree indexes: what a candidate index is, how big it
 *		would be, and planning a statement as if it existed.
 *
 * A candidate (pfgCandidate) is appended to its table's indexlist as an
 * IndexOptInfo with hypothetical = true and btree's cost estimator, through
 * perfguard.c's get_relation_info_hook, only while pfg_hypo_plan plans:
 * the hook returns after one branch otherwise.  Its size comes from the
 * table's tuples, the key columns' average widths and the btree fill
 * factor (90 for leaves, 70 for inner pages).
 *
 * Report time only: nothing here runs for a user's statement.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/hypo_index.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/amapi.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "storage/bufpage.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "hypo_index.h"

/* Fake OIDs of hypothetical indexes count down from here. */
#define PFG_HYPO_OID_BASE		((Oid) 0xFFFFFF00)

/* Hypothetical indexes the planner should see right now (usually none). */
static pfgCandidate *hypo_active[1];
static int	hypo_nactive = 0;

/*
 * pfg_hypo_estimate_size
 *		Pages and height of a freshly built btree over "tuples" entries of
 *		"keywidth" bytes of key: leaves filled to BTREE_DEFAULT_FILLFACTOR,
 *		inner pages to BTREE_NONLEAF_FILLFACTOR, plus the meta page.  No
 *		deduplication is assumed (an over-estimate for repetitive keys).
 */
void
pfg_hypo_estimate_size(double tuples, int32 keywidth, BlockNumber *pages,
					int *height)
{
	double		itemsz = MAXALIGN(sizeof(IndexTupleData) + Max(keywidth, 1)) +
		sizeof(ItemIdData);
	double		usable = BLCKSZ - SizeOfPageHeaderData -
		MAXALIGN(sizeof(BTPageOpaqueData));
	double		per_leaf = Max(floor(usable * BTREE_DEFAULT_FILLFACTOR / 100.0 / itemsz), 2.0);
	double		per_inner = Max(floor(usable * BTREE_NONLEAF_FILLFACTOR / 100.0 / itemsz), 2.0);
	double		level;
	double		total;
	int			h = 0;

	if (tuples < 1.0)
		tuples = 1.0;
	level = ceil(tuples / per_leaf);
	total = level;
	while (level > 1.0)
	{
		level = ceil(level / per_inner);
		total += level;
		h++;
	}
	total += 1.0;				/* meta page */
	if (total > (double) MaxBlockNumber)
		total = (double) MaxBlockNumber;
	*pages = (BlockNumber) total;
	*height = h;
}

/*
 * make_hypo_index
 *		The IndexOptInfo of a hypothetical btree index for the planner, in
 *		the planner's memory context.  All catalog facts were looked up when
 *		the candidate was built; this only reads the AM routine.
 */
static IndexOptInfo *
make_hypo_index(RelOptInfo *rel, pfgCandidate *c, Oid fakeoid)
{
	IndexOptInfo *info = makeNode(IndexOptInfo);
	IndexAmRoutine *am = GetIndexAmRoutineByAmId(BTREE_AM_OID, false);
	int			n = c->ncols;
	int			i;

	info->indexoid = fakeoid;
	info->reltablespace = rel->reltablespace;
	info->rel = rel;
	info->ncolumns = n;
	info->nkeycolumns = n;
	info->indexkeys = (int *) palloc(sizeof(int) * n);
	info->indexcollations = (Oid *) palloc(sizeof(Oid) * n);
	info->opfamily = (Oid *) palloc(sizeof(Oid) * n);
	info->opcintype = (Oid *) palloc(sizeof(Oid) * n);
	info->reverse_sort = (bool *) palloc(sizeof(bool) * n);
	info->nulls_first = (bool *) palloc(sizeof(bool) * n);
	info->canreturn = (bool *) palloc(sizeof(bool) * n);
	info->opclassoptions = (bytea **) palloc0(sizeof(bytea *) * n);
	info->indextlist = NIL;
	for (i = 0; i < n; i++)
	{
		Var		   *var;

		info->indexkeys[i] = c->attnos[i];
		info->indexcollations[i] = c->attcoll[i];
		info->opfamily[i] = c->opfamily[i];
		info->opcintype[i] = c->opcintype[i];
		info->reverse_sort[i] = c->desc[i];
		info->nulls_first[i] = c->nulls_first[i];
		info->canreturn[i] = true;	/* btree returns its keys */
		var = makeVar(rel->relid, c->attnos[i], c->atttype[i],
					  c->atttypmod[i], c->attcoll[i], 0);
		info->indextlist = lappend(info->indextlist,
								   makeTargetEntry((Expr *) var, i + 1,
												   NULL, false));
	}
	/* a btree's opfamilies are its sort opfamilies */
	info->sortopfamily = info->opfamily;
	info->relam = BTREE_AM_OID;
	info->indexprs = NIL;
	info->indpred = NIL;
	info->predOK = false;
	info->unique = false;
	info->immediate = true;
	info->hypothetical = true;
	info->amcanorderbyop = am->amcanorderbyop;
	info->amoptionalkey = am->amoptionalkey;
	info->amsearcharray = am->amsearcharray;
	info->amsearchnulls = am->amsearchnulls;
	info->amhasgettuple = (am->amgettuple != NULL);
	info->amhasgetbitmap = (am->amgetbitmap != NULL);
	info->amcanparallel = am->amcanparallel;
	info->amcanmarkpos = (am->ammarkpos != NULL && am->amrestrpos != NULL);
	info->amcostestimate = am->amcostestimate;

	info->tuples = rel->tuples;
	pfg_hypo_estimate_size(rel->tuples, c->keywidth, &info->pages,
						&info->tree_height);
	c->est_pages = info->pages;
	return info;
}

/*
 * pfg_hypo_get_relation_info
 *		Append the active hypothetical indexes of this table.  Called from
 *		perfguard.c's get_relation_info_hook: one branch when none is active
 *		(always, except while pfg_hypo_plan plans).
 */
void
pfg_hypo_get_relation_info(PlannerInfo *root, Oid relationObjectId,
					  bool inhparent, RelOptInfo *rel)
{
	int			i;

	if (likely(hypo_nactive == 0))
		return;
	if (inhparent)
		return;
	for (i = 0; i < hypo_nactive; i++)
	{
		if (hypo_active[i]->relid == relationObjectId)
			rel->indexlist = lappend(rel->indexlist,
									 make_hypo_index(rel, hypo_active[i],
													 PFG_HYPO_OID_BASE - i));
	}
}

/*
 * pfg_hypo_plan
 *		Plan a copy of "q" (the planner scribbles on its input) with "cand"
 *		as the only hypothetical index (or none).  The list is reset however
 *		planning ends.
 */
PlannedStmt *
pfg_hypo_plan(Query *q, const char *text, pfgCandidate *cand)
{
	PlannedStmt *volatile pstmt = NULL;
	Query	   *copy = copyObject(q);

	if (cand)
	{
		hypo_active[0] = cand;
		hypo_nactive = 1;
	}
	PG_TRY();
	{
		pstmt = pg_plan_query(copy, text, CURSOR_OPT_PARALLEL_OK, NULL);
	}
	PG_FINALLY();
	{
		hypo_nactive = 0;
		hypo_active[0] = NULL;
	}
	PG_END_TRY();
	return pstmt;
}

/* Access method of a relation, or InvalidOid. */
static Oid
rel_am(Oid relid)
{
	HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			am = InvalidOid;

	if (HeapTupleIsValid(tp))
	{
		am = ((Form_pg_class) GETSTRUCT(tp))->relam;
		ReleaseSysCache(tp);
	}
	return am;
}

/*
 * pfg_hypo_covering_index
 *		The first valid, non-partial btree index of the open table whose key
 *		starts with these columns (in order), or InvalidOid.
 */
Oid
pfg_hypo_covering_index(Relation rel, int ncols, const AttrNumber *attnos)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		HeapTuple	tp = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;
		bool		same = true;
		int			i;

		if (!HeapTupleIsValid(tp))
			continue;
		ix = (Form_pg_index) GETSTRUCT(tp);
		if (!ix->indisvalid || ix->indnkeyatts < ncols ||
			!heap_attisnull(tp, Anum_pg_index_indpred, NULL) ||
			rel_am(ix->indexrelid) != BTREE_AM_OID)
			same = false;
		for (i = 0; same && i < ncols; i++)
			if (ix->indkey.values[i] != attnos[i])
				same = false;
		ReleaseSysCache(tp);
		if (same)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

bool
pfg_hypo_same_columns(const pfgCandidate *a, const pfgCandidate *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols != b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i])
			return false;
	return true;
}

/* Is a's key a leading prefix of b's (a shorter)? */
bool
pfg_hypo_is_prefix(const pfgCandidate *a, const pfgCandidate *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols >= b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i])
			return false;
	return true;
}

char *
pfg_qualified_rel(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* "a, b DESC" */
char *
pfg_hypo_columns_sql(const pfgCandidate *c)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < c->ncols; i++)
	{
		appendStringInfo(&buf, "%s%s", i ? ", " : "",
						 quote_identifier(get_attname(c->relid, c->attnos[i], false)));
		if (c->desc[i])
			appendStringInfoString(&buf, " DESC");
		if (c->nulls_first[i] != c->desc[i])
			appendStringInfoString(&buf, c->nulls_first[i] ? " NULLS FIRST" : " NULLS LAST");
	}
	return buf.data;
}

char *
pfg_hypo_ddl(const pfgCandidate *c)
{
	return psprintf("CREATE INDEX CONCURRENTLY ON %s (%s)",
					pfg_qualified_rel(c->relid), pfg_hypo_columns_sql(c));
}

