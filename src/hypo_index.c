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
 * A key column is a column, or an immutable one-argument function of a
 * column (an expression index such as lower(email)), with the default
 * btree operator class of its type or a given one (text_pattern_ops for
 * LIKE 'prefix%' under a collation other than C).  A candidate on a
 * partitioned table is an index on the parent: the planner sees it on
 * every leaf partition (with the leaf's own attribute numbers), which is
 * what CREATE INDEX on the parent builds.  Up to PFG_HYPO_MAX_SET
 * candidates are planned together (the indexes of a BitmapOr).
 *
 * Planning goes through planner(), so perfguard's planner hook keeps the
 * nesting level of anything run at plan time; the advisor's Query has no
 * query id (index_candidates.c analyses it without jumbling), so
 * pg_stat_statements does not count its planning.
 *
 * Report time, or a sampled execution's evidence (index_evidence.c):
 * nothing here runs for an unsampled statement.
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
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_proc.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "storage/bufpage.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "hypo_index.h"

/* Fake OIDs of hypothetical indexes count down from here. */
#define PFG_HYPO_OID_BASE		((Oid) 0xFFFFFF00)

/*---- local state: the hypothetical indexes the planner should see ----*/
static pfgCandidate *hypo_active[PFG_HYPO_MAX_SET];
static List *hypo_leaves[PFG_HYPO_MAX_SET];	/* partitions of a parent's */
static int	hypo_nactive = 0;

/* Installs perfguard.c's get_relation_info hook; called once, then NULL. */
static pfg_hypo_install_fn hypo_install = NULL;

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
 * pfg_hypo_is_partitioned
 *		Is this relation a partitioned table?
 */
bool
pfg_hypo_is_partitioned(Oid relid)
{
	return get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
}

/*
 * pfg_hypo_rel_tuples
 *		The planner's own estimate of a table's rows (estimate_rel_size: the
 *		density of the last ANALYZE scaled to the current size, or a guess
 *		from the tuple width for a table never analysed, such as a fresh
 *		materialized view); the sum over the partitions of a partitioned
 *		table; -1 for anything else.  Takes AccessShareLock on what it opens.
 */
double
pfg_hypo_rel_tuples(Oid relid)
{
	char		relkind = get_rel_relkind(relid);
	double		sum = 0;

	if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW)
	{
		Relation	rel = try_relation_open(relid, AccessShareLock);
		BlockNumber pages;
		double		tuples = -1;
		double		allvisfrac;

		if (rel == NULL)
			return -1;
		estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
		relation_close(rel, AccessShareLock);
		return tuples;
	}
	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *all = find_all_inheritors(relid, AccessShareLock, NULL);
		ListCell   *lc;

		foreach(lc, all)
		{
			Oid			part = lfirst_oid(lc);
			char		k = get_rel_relkind(part);

			if (k == RELKIND_RELATION || k == RELKIND_MATVIEW)
				sum += Max(pfg_hypo_rel_tuples(part), 0);
		}
		return sum;
	}
	return -1;
}

/*
 * key_expr
 *		The expression of an expression key column over "var": the function
 *		applied to the column, with the collations parse analysis would give
 *		it (so that the planner's equal() matches the statement's own).
 */
static Expr *
key_expr(Oid funcid, Oid rettype, Var *var)
{
	Oid			inputcoll = var->varcollid;
	Oid			funccoll = InvalidOid;

	if (type_is_collatable(rettype))
		funccoll = OidIsValid(inputcoll) ? inputcoll : DEFAULT_COLLATION_OID;
	return (Expr *) makeFuncExpr(funcid, rettype, list_make1(var), funccoll,
								 inputcoll, COERCE_EXPLICIT_CALL);
}

/*
 * pfg_hypo_fill
 *		Look up the catalog facts of the candidate's key columns; false when
 *		a column is gone, a function is not immutable, or a type has no
 *		(given or default) btree operator class.
 */
bool
pfg_hypo_fill(pfgCandidate *c)
{
	pfgIndexKey *k = &c->key;
	int			i;

	c->keywidth = 0;
	c->partitioned = pfg_hypo_is_partitioned(k->relid);
	if (k->ncols < 1 || k->ncols > PFG_INDEX_MAX_COLS)
		return false;
	for (i = 0; i < k->ncols; i++)
	{
		int32		w;
		Oid			opclass = k->opclass[i];
		Oid			coltype;
		int32		coltypmod;
		Oid			colcoll;

		if (k->attnos[i] <= 0 || get_attname(k->relid, k->attnos[i], true) == NULL)
			return false;
		get_atttypetypmodcoll(k->relid, k->attnos[i], &coltype, &coltypmod,
							  &colcoll);
		w = get_attavgwidth(k->relid, k->attnos[i]);
		if (w <= 0)
			w = get_typavgwidth(coltype, coltypmod);
		if (OidIsValid(k->exprfunc[i]))
		{
			Oid			rettype = get_func_rettype(k->exprfunc[i]);

			if (!OidIsValid(rettype) ||
				func_volatile(k->exprfunc[i]) != PROVOLATILE_IMMUTABLE)
				return false;
			c->atttype[i] = rettype;
			c->atttypmod[i] = -1;
			c->attcoll[i] = type_is_collatable(rettype) ?
				(OidIsValid(colcoll) ? colcoll : DEFAULT_COLLATION_OID) : InvalidOid;
			if (rettype != coltype)
				w = get_typavgwidth(rettype, -1);
		}
		else
		{
			c->atttype[i] = coltype;
			c->atttypmod[i] = coltypmod;
			c->attcoll[i] = colcoll;
		}
		if (!OidIsValid(opclass))
			opclass = GetDefaultOpClass(c->atttype[i], BTREE_AM_OID);
		if (!OidIsValid(opclass))
			return false;
		c->opfamily[i] = get_opclass_family(opclass);
		c->opcintype[i] = get_opclass_input_type(opclass);
		c->keywidth += w;
	}
	return true;
}

/*
 * make_hypo_index
 *		The IndexOptInfo of a hypothetical btree index for the planner, in
 *		the planner's memory context, on "relid" (the candidate's table, or
 *		one of its partitions: the columns are matched by name).  NULL when
 *		a partition lacks a column.
 */
static IndexOptInfo *
make_hypo_index(RelOptInfo *rel, Oid relid, pfgCandidate *c, Oid fakeoid)
{
	IndexOptInfo *info = makeNode(IndexOptInfo);
	IndexAmRoutine *am = GetIndexAmRoutineByAmId(BTREE_AM_OID, false);
	int			n = c->key.ncols;
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
	info->indexprs = NIL;
	for (i = 0; i < n; i++)
	{
		AttrNumber	attno = c->key.attnos[i];
		Oid			coltype;
		int32		coltypmod;
		Oid			colcoll;
		Var		   *var;
		Expr	   *expr;

		if (relid != c->key.relid)
		{
			char	   *name = get_attname(c->key.relid, attno, false);

			attno = get_attnum(relid, name);
			if (attno == InvalidAttrNumber)
				return NULL;
		}
		get_atttypetypmodcoll(relid, attno, &coltype, &coltypmod, &colcoll);
		var = makeVar(rel->relid, attno, coltype, coltypmod, colcoll, 0);
		if (OidIsValid(c->key.exprfunc[i]))
		{
			expr = key_expr(c->key.exprfunc[i], c->atttype[i], var);
			info->indexkeys[i] = 0;
			info->indexprs = lappend(info->indexprs, expr);
		}
		else
		{
			expr = (Expr *) var;
			info->indexkeys[i] = attno;
		}
		info->indexcollations[i] = c->attcoll[i];
		info->opfamily[i] = c->opfamily[i];
		info->opcintype[i] = c->opcintype[i];
		info->reverse_sort[i] = c->key.desc[i];
		info->nulls_first[i] = c->key.nulls_first[i];
		info->canreturn[i] = true;	/* btree returns its keys */
		info->indextlist = lappend(info->indextlist,
								   makeTargetEntry(expr, i + 1, NULL, false));
	}
	/* a btree's opfamilies are its sort opfamilies */
	info->sortopfamily = info->opfamily;
	info->relam = BTREE_AM_OID;
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
 *		Append the active hypothetical indexes of this table (or, for an
 *		index on a partitioned table, of this partition).  Called from
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
		pfgCandidate *c = hypo_active[i];
		IndexOptInfo *info = NULL;

		if (!c->partitioned && c->key.relid == relationObjectId)
			info = make_hypo_index(rel, relationObjectId, c,
								   PFG_HYPO_OID_BASE - i);
		else if (c->partitioned &&
				 list_member_oid(hypo_leaves[i], relationObjectId))
			info = make_hypo_index(rel, relationObjectId, c,
								   PFG_HYPO_OID_BASE - i);
		if (info)
			rel->indexlist = lappend(rel->indexlist, info);
	}
}

/*
 * pfg_hypo_plan
 *		Plan a copy of "q" (the planner scribbles on its input) with the
 *		candidates as the only hypothetical indexes (none when ncands is
 *		0), and the bound parameter values "params" (NULL: a generic plan).
 *		The list is reset however planning ends.
 */
/*
 * pfg_hypo_set_install_fn
 *		Register the function that installs the get_relation_info hook
 *		(perfguard.c, which owns every hook install): it runs the first time
 *		this backend plans with hypothetical indexes.
 */
void
pfg_hypo_set_install_fn(pfg_hypo_install_fn fn)
{
	hypo_install = fn;
}

PlannedStmt *
pfg_hypo_plan(Query *q, const char *text, pfgCandidate **cands, int ncands,
			  ParamListInfo params)
{
	PlannedStmt *volatile pstmt = NULL;
	Query	   *copy = copyObject(q);
	int			i;

	Assert(ncands >= 0 && ncands <= PFG_HYPO_MAX_SET);
	if (ncands > 0 && hypo_install != NULL)
	{
		hypo_install();
		hypo_install = NULL;
	}
	for (i = 0; i < ncands; i++)
	{
		hypo_active[i] = cands[i];
		hypo_leaves[i] = cands[i]->partitioned ?
			find_all_inheritors(cands[i]->key.relid, NoLock, NULL) : NIL;
	}
	hypo_nactive = ncands;
	PG_TRY();
	{
		pstmt = planner(copy, text, CURSOR_OPT_PARALLEL_OK, params);
	}
	PG_FINALLY();
	{
		hypo_nactive = 0;
		for (i = 0; i < ncands; i++)
		{
			hypo_active[i] = NULL;
			hypo_leaves[i] = NIL;
		}
	}
	PG_END_TRY();
	return pstmt;
}

/*
 * pfg_hypo_plan_cost
 *		The estimated total cost of the plan pfg_hypo_plan makes.
 */
double
pfg_hypo_plan_cost(Query *q, const char *text, pfgCandidate **cands,
				   int ncands, ParamListInfo params)
{
	return pfg_hypo_plan(q, text, cands, ncands, params)->planTree->total_cost;
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
 * key_opfamily
 *		The btree operator family the key column "i" sorts by: its given
 *		operator class's, or the default one of its type.
 */
static Oid
key_opfamily(const pfgIndexKey *k, int i)
{
	Oid			typid;
	Oid			opclass = k->opclass[i];

	if (!OidIsValid(opclass))
	{
		typid = OidIsValid(k->exprfunc[i]) ? get_func_rettype(k->exprfunc[i]) :
			get_atttype(k->relid, k->attnos[i]);
		opclass = GetDefaultOpClass(typid, BTREE_AM_OID);
	}
	return OidIsValid(opclass) ? get_opclass_family(opclass) : InvalidOid;
}

/* Is "e" the function "funcid" of column "attno" (through relabelings)? */
static bool
is_key_expr(Node *e, Oid funcid, AttrNumber attno)
{
	FuncExpr   *f;
	Node	   *arg;

	if (e == NULL || !IsA(e, FuncExpr))
		return false;
	f = (FuncExpr *) e;
	if (f->funcid != funcid || list_length(f->args) != 1)
		return false;
	arg = linitial(f->args);
	while (arg && IsA(arg, RelabelType))
		arg = (Node *) ((RelabelType *) arg)->arg;
	return arg && IsA(arg, Var) && ((Var *) arg)->varattno == attno;
}

/*
 * pfg_hypo_covering_index
 *		The first valid, non-partial btree index of the open table whose key
 *		starts with the key's columns (in order, with the same expressions
 *		and operator families), or InvalidOid.  Directions are not compared:
 *		a btree scanned backward serves the opposite order.
 */
Oid
pfg_hypo_covering_index(Relation rel, const pfgIndexKey *k)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;
	Oid			families[PFG_INDEX_MAX_COLS];
	int			i;

	for (i = 0; i < k->ncols; i++)
		families[i] = key_opfamily(k, i);

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tp = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index ix;
		oidvector  *indclass;
		Datum		d;
		bool		isnull;
		bool		same = true;
		bool		has_expr = false;

		if (!HeapTupleIsValid(tp))
			continue;
		ix = (Form_pg_index) GETSTRUCT(tp);
		if (!ix->indisvalid || ix->indnkeyatts < k->ncols ||
			!heap_attisnull(tp, Anum_pg_index_indpred, NULL) ||
			rel_am(ix->indexrelid) != BTREE_AM_OID)
			same = false;
		d = SysCacheGetAttr(INDEXRELID, tp, Anum_pg_index_indclass, &isnull);
		indclass = (oidvector *) DatumGetPointer(d);
		for (i = 0; same && i < k->ncols; i++)
		{
			if (OidIsValid(k->exprfunc[i]))
			{
				if (ix->indkey.values[i] != 0)
					same = false;
				has_expr = true;
			}
			else if (ix->indkey.values[i] != k->attnos[i])
				same = false;
			if (same && !isnull &&
				get_opclass_family(indclass->values[i]) != families[i])
				same = false;
		}
		ReleaseSysCache(tp);

		/* expression columns: compare the index's expressions */
		if (same && has_expr)
		{
			Relation	irel = index_open(indexoid, AccessShareLock);
			List	   *exprs = RelationGetIndexExpressions(irel);
			ListCell   *le = list_head(exprs);
			int2vector *indkey = &irel->rd_index->indkey;

			for (i = 0; same && i < k->ncols; i++)
			{
				if (indkey->values[i] != 0)
					continue;
				if (le == NULL)
					same = false;
				else
				{
					if (!OidIsValid(k->exprfunc[i]) ||
						!is_key_expr(lfirst(le), k->exprfunc[i], k->attnos[i]))
						same = false;
					le = lnext(exprs, le);
				}
			}
			index_close(irel, AccessShareLock);
		}
		if (same)
		{
			found = indexoid;
			break;
		}
	}
	list_free(indexes);
	return found;
}

char *
pfg_qualified_rel(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * opclass_sql
 *		The name of an operator class as CREATE INDEX takes it (qualified
 *		when it is not in pg_catalog).
 */
static char *
opclass_sql(Oid opclass)
{
	HeapTuple	tp = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclass));
	Form_pg_opclass f;
	char	   *result;

	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for operator class %u", opclass);
	f = (Form_pg_opclass) GETSTRUCT(tp);
	if (f->opcnamespace == PG_CATALOG_NAMESPACE)
		result = pstrdup(quote_identifier(NameStr(f->opcname)));
	else
		result = quote_qualified_identifier(get_namespace_name(f->opcnamespace),
											NameStr(f->opcname));
	ReleaseSysCache(tp);
	return result;
}

/*
 * pfg_hypo_column_sql
 *		Key column "col" as CREATE INDEX spells it: "email", "lower(email)",
 *		"name text_pattern_ops", "created_at DESC".  This is also what the
 *		columns array of index_advice shows.
 */
char *
pfg_hypo_column_sql(const pfgIndexKey *k, int col)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (OidIsValid(k->exprfunc[col]))
	{
		Oid			coltype;
		int32		coltypmod;
		Oid			colcoll;
		Var		   *var;

		get_atttypetypmodcoll(k->relid, k->attnos[col], &coltype, &coltypmod,
							  &colcoll);
		var = makeVar(1, k->attnos[col], coltype, coltypmod, colcoll, 0);
		appendStringInfoString(&buf,
							   deparse_expression((Node *) key_expr(k->exprfunc[col],
																	get_func_rettype(k->exprfunc[col]),
																	var),
												  deparse_context_for(get_rel_name(k->relid),
																	  k->relid),
												  false, false));
	}
	else
		appendStringInfoString(&buf,
							   quote_identifier(get_attname(k->relid, k->attnos[col],
															false)));
	if (OidIsValid(k->opclass[col]))
		appendStringInfo(&buf, " %s", opclass_sql(k->opclass[col]));
	if (k->desc[col])
		appendStringInfoString(&buf, " DESC");
	if (k->nulls_first[col] != k->desc[col])
		appendStringInfoString(&buf, k->nulls_first[col] ? " NULLS FIRST" : " NULLS LAST");
	return buf.data;
}

/* "a, lower(b), c DESC" */
char *
pfg_hypo_columns_sql(const pfgIndexKey *k)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < k->ncols; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", pfg_hypo_column_sql(k, i));
	return buf.data;
}

/*
 * pfg_hypo_ddl
 *		The CREATE INDEX of a key: CONCURRENTLY, except on a partitioned
 *		table, which does not support it (the plain statement builds the
 *		parent's index and one per partition; docs/index_advice.md says how
 *		to build it without blocking writes).
 */
char *
pfg_hypo_ddl(const pfgIndexKey *k)
{
	return psprintf("CREATE INDEX %sON %s (%s)",
					pfg_hypo_is_partitioned(k->relid) ? "" : "CONCURRENTLY ",
					pfg_qualified_rel(k->relid), pfg_hypo_columns_sql(k));
}
