/*-------------------------------------------------------------------------
 *
 * index_candidates.c
 *		The candidate search of the index advisor: which scans of a
 *		statement's plan could use an index, which indexes to try, and which
 *		one proves itself.
 *
 * How a candidate is built and proven (docs/index_advice.md has more):
 *	1. The normalised text of a statement (with $n placeholders) is parsed
 *	   with raw_parser, analysed with parse_analyze_varparams (which infers
 *	   the types of $n), rewritten, and planned with pg_plan_query.  The $n
 *	   stay Params, so this is the generic plan and its cost.
 *	2. The plan is walked for scans of big tables (reltuples >=
 *	   PFG_BIG_TABLE_ROWS) that filter: Seq Scans with a qual, and Index /
 *	   Bitmap Heap Scans that still have a Filter.  A scan under a Sort also
 *	   counts when the statement sorts by columns of that table.
 *	3. The scan's quals give equality columns (=, = ANY, IS NULL, boolean
 *	   columns) and range columns (<, <=, >, >=), as the column type's
 *	   default btree operator family sees them; ORDER BY gives the order
 *	   columns.  Candidates: equality columns first, then the first range
 *	   column, then the ORDER BY columns, plus the shorter variants and the
 *	   single columns.  A candidate that an existing btree index already
 *	   starts with is dropped.
 *	4. Each candidate is proven: the statement is planned again with the
 *	   candidate as a hypothetical index (hypo_index.c).  The cheapest
 *	   candidate wins (a shorter one when it is within 1%), if it lowers the
 *	   statement's estimated total cost by at least PFG_MIN_IMPROVEMENT.
 *
 * Everything here reads the catalogs and may ERROR; callers run it guarded
 * (report.c) or let the error through (perfguard.advise()).
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_candidates.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "index_candidates.h"

/* A table is "big" from this many rows (pg_class.reltuples) on. */
#define PFG_BIG_TABLE_ROWS		10000.0
/* Most candidates tried per scanned table. */
#define PFG_MAX_CANDIDATES		8

/* A scan of a big table that filters or feeds a sort. */
typedef struct scanTarget
{
	Oid			relid;
	Index		scanrelid;
	const char *node;			/* "Seq Scan", "Index Scan", ... */
	List	   *quals;
	double		reltuples;
	double		plan_rows;
	bool		under_sort;
} scanTarget;

/* The ORDER BY of a statement when it is on columns of one table. */
typedef struct orderCols
{
	Oid			relid;
	int			n;
	AttrNumber	attnos[PFG_INDEX_MAX_COLS];
	bool		desc[PFG_INDEX_MAX_COLS];
	bool		nulls_first[PFG_INDEX_MAX_COLS];
} orderCols;

/*
 * pfg_index_analyse_one
 *		Parse, analyse and rewrite one statement (with $n placeholders) into
 *		its Query.  With "strict" (perfguard.advise) bad input raises the
 *		documented errors; otherwise NULL is returned for anything that is
 *		not one SELECT/UPDATE/DELETE.  Other errors propagate.
 */
Query *
pfg_index_analyse_one(const char *text, bool strict)
{
	List	   *raw;
	RawStmt    *rs;
	Node	   *stmt;
	Oid		   *ptypes = NULL;
	int			nparams = 0;
	Query	   *q;
	List	   *rewritten;
	bool		ok;

	raw = raw_parser(text, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must contain exactly one statement, found %d",
						list_length(raw)),
				 errhint("Pass one SELECT, UPDATE or DELETE statement.")));
	}
	rs = linitial_node(RawStmt, raw);
	stmt = rs->stmt;
	ok = (IsA(stmt, SelectStmt) && ((SelectStmt *) stmt)->intoClause == NULL) ||
		IsA(stmt, UpdateStmt) || IsA(stmt, DeleteStmt);
	if (!ok)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("perfguard.advise() only supports SELECT, UPDATE and DELETE statements"),
				 errhint("Pass the statement to analyse, not a command that changes the schema or inserts rows.")));
	}

	q = parse_analyze_varparams(rs, text, &ptypes, &nparams, NULL);
	rewritten = QueryRewrite(q);
	if (list_length(rewritten) != 1)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query is rewritten into %d statements", list_length(rewritten)),
				 errhint("perfguard.advise() analyses statements that rules do not expand.")));
	}
	q = linitial_node(Query, rewritten);
	if (q->utilityStmt != NULL ||
		(q->commandType != CMD_SELECT && q->commandType != CMD_UPDATE &&
		 q->commandType != CMD_DELETE))
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("perfguard.advise() only supports SELECT, UPDATE and DELETE statements")));
	}
	return q;
}

static double
rel_reltuples(Oid relid)
{
	HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	double		r = -1;

	if (HeapTupleIsValid(tp))
	{
		Form_pg_class c = (Form_pg_class) GETSTRUCT(tp);

		if (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_MATVIEW)
			r = c->reltuples;
		ReleaseSysCache(tp);
	}
	return r;
}

static void walk_plan(Plan *plan, PlannedStmt *pstmt, bool under_sort,
					  List **targets);

static void
walk_plan_list(List *plans, PlannedStmt *pstmt, bool under_sort, List **targets)
{
	ListCell   *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), pstmt, under_sort, targets);
}

/*
 * walk_plan
 *		Collect the scans of big tables that filter, or that feed a Sort
 *		(directly or through a Gather).
 */
static void
walk_plan(Plan *plan, PlannedStmt *pstmt, bool under_sort, List **targets)
{
	Index		scanrelid = 0;
	List	   *quals = NIL;
	const char *node = NULL;

	if (plan == NULL)
		return;
	check_stack_depth();

	switch (nodeTag(plan))
	{
		case T_SeqScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			quals = plan->qual;
			node = "Seq Scan";
			break;
		case T_IndexScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			if (plan->qual != NIL)
				quals = list_concat_copy(((IndexScan *) plan)->indexqualorig,
										 plan->qual);
			node = "Index Scan";
			break;
		case T_BitmapHeapScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			if (plan->qual != NIL)
				quals = list_concat_copy(((BitmapHeapScan *) plan)->bitmapqualorig,
										 plan->qual);
			node = "Bitmap Heap Scan";
			break;
		default:
			break;
	}

	if (node != NULL)
	{
		RangeTblEntry *rte = rt_fetch(scanrelid, pstmt->rtable);

		if (rte->rtekind == RTE_RELATION &&
			(quals != NIL || (under_sort && nodeTag(plan) == T_SeqScan)))
		{
			double		reltuples = rel_reltuples(rte->relid);

			if (reltuples >= PFG_BIG_TABLE_ROWS)
			{
				scanTarget *t = palloc0(sizeof(scanTarget));

				t->relid = rte->relid;
				t->scanrelid = scanrelid;
				t->node = node;
				t->quals = quals;
				t->reltuples = reltuples;
				t->plan_rows = plan->plan_rows;
				t->under_sort = under_sort;
				*targets = lappend(*targets, t);
			}
		}
		return;
	}

	switch (nodeTag(plan))
	{
		case T_Sort:
		case T_IncrementalSort:
			walk_plan(plan->lefttree, pstmt, true, targets);
			return;
		case T_Gather:
		case T_GatherMerge:
		case T_Material:
		case T_Limit:
			walk_plan(plan->lefttree, pstmt, under_sort, targets);
			return;
		case T_Append:
			walk_plan_list(((Append *) plan)->appendplans, pstmt, false, targets);
			break;
		case T_MergeAppend:
			walk_plan_list(((MergeAppend *) plan)->mergeplans, pstmt, false, targets);
			break;
		case T_SubqueryScan:
			walk_plan(((SubqueryScan *) plan)->subplan, pstmt, false, targets);
			break;
		case T_CustomScan:
			walk_plan_list(((CustomScan *) plan)->custom_plans, pstmt, false, targets);
			break;
		default:
			break;
	}
	walk_plan(plan->lefttree, pstmt, false, targets);
	walk_plan(plan->righttree, pstmt, false, targets);
}

static Node *
strip_implicit(Node *n)
{
	while (n && (IsA(n, RelabelType) ||
				 (IsA(n, FuncExpr) &&
				  ((FuncExpr *) n)->funcformat == COERCE_IMPLICIT_CAST &&
				  list_length(((FuncExpr *) n)->args) == 1)))
	{
		if (IsA(n, RelabelType))
			n = (Node *) ((RelabelType *) n)->arg;
		else
			n = linitial(((FuncExpr *) n)->args);
	}
	return n;
}

/* Default btree opfamily of a type, or InvalidOid. */
static Oid
btree_opfamily_of(Oid typid, Oid *opcintype)
{
	Oid			opclass = GetDefaultOpClass(typid, BTREE_AM_OID);

	if (!OidIsValid(opclass))
		return InvalidOid;
	if (opcintype)
		*opcintype = get_opclass_input_type(opclass);
	return get_opclass_family(opclass);
}

static void
add_col(AttrNumber *cols, int *n, AttrNumber att)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (cols[i] == att)
			return;
	if (*n < PFG_INDEX_MAX_COLS)
		cols[(*n)++] = att;
}

/* The plain column of this scan a qual operand is, or NULL. */
static Var *
scan_var(Node *n, Index scanrelid)
{
	n = strip_implicit(n);
	if (n && IsA(n, Var) && ((Var *) n)->varno == scanrelid &&
		((Var *) n)->varattno > 0 && ((Var *) n)->varlevelsup == 0)
		return (Var *) n;
	return NULL;
}

/* Does an operand not depend on the scanned row? */
static bool
row_independent(Node *n)
{
	return !contain_var_clause(n) && !contain_volatile_functions(n);
}

/*
 * classify_quals
 *		Sort the scan's quals into equality and range columns (as the
 *		column type's default btree opfamily sees the operator), and
 *		describe them for the reason text ("a =, b >").
 */
static void
classify_quals(List *quals, Index scanrelid, Oid relid,
			   AttrNumber *eq, int *neq, AttrNumber *range, int *nrange,
			   StringInfo desc)
{
	ListCell   *lc;
	List	   *conj = NIL;

	foreach(lc, quals)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == AND_EXPR)
			conj = list_concat(conj, ((BoolExpr *) n)->args);
		else
			conj = lappend(conj, n);
	}

	foreach(lc, conj)
	{
		Node	   *n = lfirst(lc);
		Var		   *var = NULL;
		Oid			opno = InvalidOid;
		bool		is_eq = false;
		bool		is_range = false;
		const char *what = NULL;

		if (IsA(n, OpExpr) && list_length(((OpExpr *) n)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) n;

			if ((var = scan_var(linitial(op->args), scanrelid)) &&
				row_independent(lsecond(op->args)))
				opno = op->opno;
			else if ((var = scan_var(lsecond(op->args), scanrelid)) &&
					 row_independent(linitial(op->args)))
				opno = get_commutator(op->opno);
			else
				var = NULL;
		}
		else if (IsA(n, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) n)->useOr)
		{
			ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) n;

			if ((var = scan_var(linitial(op->args), scanrelid)) &&
				row_independent(lsecond(op->args)))
			{
				opno = op->opno;
				what = "= ANY";
			}
			else
				var = NULL;
		}
		else if (IsA(n, NullTest) &&
				 ((NullTest *) n)->nulltesttype == IS_NULL &&
				 (var = scan_var((Node *) ((NullTest *) n)->arg, scanrelid)))
		{
			is_eq = true;
			what = "IS NULL";
		}
		else if ((var = scan_var(n, scanrelid)) && var->vartype == BOOLOID)
		{
			is_eq = true;
			what = "(boolean)";
		}
		else if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == NOT_EXPR &&
				 (var = scan_var(linitial(((BoolExpr *) n)->args), scanrelid)) &&
				 var->vartype == BOOLOID)
		{
			is_eq = true;
			what = "(NOT boolean)";
		}
		else
			var = NULL;

		if (var == NULL)
			continue;

		if (OidIsValid(opno))
		{
			Oid			fam = btree_opfamily_of(var->vartype, NULL);
			int			strategy;

			if (!OidIsValid(fam))
				continue;
			strategy = get_op_opfamily_strategy(opno, fam);
			if (strategy == BTEqualStrategyNumber)
			{
				is_eq = true;
				if (what == NULL)
					what = "=";
			}
			else if (strategy >= BTLessStrategyNumber &&
					 strategy <= BTGreaterStrategyNumber && what == NULL)
			{
				is_range = true;
				what = (strategy == BTLessStrategyNumber) ? "<" :
					(strategy == BTLessEqualStrategyNumber) ? "<=" :
					(strategy == BTGreaterEqualStrategyNumber) ? ">=" : ">";
			}
		}
		if (!is_eq && !is_range)
			continue;
		if (is_eq)
			add_col(eq, neq, var->varattno);
		else
			add_col(range, nrange, var->varattno);
		appendStringInfo(desc, "%s%s %s", desc->len ? ", " : "",
						 quote_identifier(get_attname(relid, var->varattno, false)),
						 what);
	}
}

/*
 * order_columns
 *		The statement's ORDER BY when every key is a plain column of the one
 *		range-table entry of a table (self-joins are left alone).
 */
static void
order_columns(Query *q, orderCols *oc)
{
	ListCell   *lc;
	Index		varno = 0;
	int			nasc = 0,
				ndesc_default = 0;
	int			i;

	memset(oc, 0, sizeof(*oc));
	if (q->sortClause == NIL || q->commandType != CMD_SELECT)
		return;
	foreach(lc, q->sortClause)
	{
		SortGroupClause *sc = lfirst(lc);
		Node	   *e = strip_implicit((Node *) get_sortgroupclause_expr(sc, q->targetList));
		Var		   *v;
		Oid			fam,
					intype;
		int16		strategy;
		RangeTblEntry *rte;

		if (e == NULL || !IsA(e, Var))
			goto fail;
		v = (Var *) e;
		if (v->varlevelsup != 0 || v->varattno <= 0 ||
			(varno != 0 && v->varno != varno))
			goto fail;
		varno = v->varno;
		rte = rt_fetch(varno, q->rtable);
		if (rte->rtekind != RTE_RELATION)
			goto fail;
		if (!get_ordering_op_properties(sc->sortop, &fam, &intype, &strategy))
			goto fail;
		if (oc->n >= PFG_INDEX_MAX_COLS)
			break;
		oc->attnos[oc->n] = v->varattno;
		oc->desc[oc->n] = (strategy == BTGreaterStrategyNumber);
		oc->nulls_first[oc->n] = sc->nulls_first;
		if (!oc->desc[oc->n] && !oc->nulls_first[oc->n])
			nasc++;
		if (oc->desc[oc->n] && oc->nulls_first[oc->n])
			ndesc_default++;
		oc->n++;
		oc->relid = rte->relid;
	}
	/* the table must appear once, or we cannot tell which scan sorts */
	{
		int			seen = 0;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_RELATION && rte->relid == oc->relid)
				seen++;
		}
		if (seen != 1)
			goto fail;
	}
	/* all DESC (NULLS FIRST): an ascending index scanned backward serves it */
	if (ndesc_default == oc->n)
	{
		for (i = 0; i < oc->n; i++)
			oc->desc[i] = oc->nulls_first[i] = false;
	}
	return;

fail:
	memset(oc, 0, sizeof(*oc));
}

/*
 * fill_candidate
 *		Look up the catalog facts of the candidate's columns; false when a
 *		column has no default btree operator class.
 */
static bool
fill_candidate(pfgCandidate *c)
{
	int			i;

	c->keywidth = 0;
	for (i = 0; i < c->ncols; i++)
	{
		int32		w;

		get_atttypetypmodcoll(c->relid, c->attnos[i], &c->atttype[i],
							  &c->atttypmod[i], &c->attcoll[i]);
		c->opfamily[i] = btree_opfamily_of(c->atttype[i], &c->opcintype[i]);
		if (!OidIsValid(c->opfamily[i]))
			return false;
		w = get_attavgwidth(c->relid, c->attnos[i]);
		if (w <= 0)
			w = get_typavgwidth(c->atttype[i], c->atttypmod[i]);
		c->keywidth += w;
	}
	return c->ncols > 0;
}

/*
 * existing_index_covers
 *		Does a valid, non-partial btree index of the table start with the
 *		candidate's columns (in order)?  Then the planner already had it.
 */
static bool
existing_index_covers(const pfgCandidate *c)
{
	Relation	rel = table_open(c->relid, AccessShareLock);
	bool		found = OidIsValid(pfg_hypo_covering_index(rel, c->ncols, c->attnos));

	table_close(rel, AccessShareLock);
	return found;
}

/* Append columns (ascending unless given) to a candidate, skipping repeats. */
static void
cand_add(pfgCandidate *c, const AttrNumber *cols, int n,
		 const bool *desc, const bool *nulls_first)
{
	int			i,
				j;

	for (i = 0; i < n && c->ncols < PFG_INDEX_MAX_COLS; i++)
	{
		bool		dup = false;

		for (j = 0; j < c->ncols; j++)
			if (c->attnos[j] == cols[i])
				dup = true;
		if (dup)
			continue;
		c->attnos[c->ncols] = cols[i];
		c->desc[c->ncols] = desc ? desc[i] : false;
		c->nulls_first[c->ncols] = nulls_first ? nulls_first[i] : false;
		c->ncols++;
	}
}

static void
cand_push(List **list, pfgCandidate *c)
{
	ListCell   *lc;

	if (c->ncols == 0 || list_length(*list) >= PFG_MAX_CANDIDATES)
		return;
	foreach(lc, *list)
		if (pfg_hypo_same_columns(lfirst(lc), c))
			return;
	*list = lappend(*list, c);
}

static pfgCandidate *
new_candidate(Oid relid)
{
	pfgCandidate *c = palloc0(sizeof(pfgCandidate));

	c->relid = relid;
	return c;
}

/*
 * build_candidates
 *		The candidate indexes for one scanned table (see the file header).
 */
static List *
build_candidates(Oid relid, AttrNumber *eq, int neq, AttrNumber *range,
				 int nrange, const orderCols *oc)
{
	List	   *out = NIL;
	List	   *valid = NIL;
	ListCell   *lc;
	bool		has_order = (oc->n > 0 && oc->relid == relid);
	pfgCandidate *c;
	int			i;

#define NEWCAND() (c = new_candidate(relid))

	if (neq + nrange > 0)
	{
		/* equality, then the first range column, then the order */
		NEWCAND();
		cand_add(c, eq, neq, NULL, NULL);
		cand_add(c, range, Min(nrange, 1), NULL, NULL);
		if (has_order)
		{
			pfgCandidate *full = new_candidate(relid);

			*full = *c;
			cand_add(full, oc->attnos, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, full);
		}
		cand_push(&out, c);
		/* equality, then the order (the range filtered in the heap) */
		if (has_order && nrange > 0)
		{
			NEWCAND();
			cand_add(c, eq, neq, NULL, NULL);
			cand_add(c, oc->attnos, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, c);
		}
		/* equality only */
		if (neq > 0 && (nrange > 0 || has_order))
		{
			NEWCAND();
			cand_add(c, eq, neq, NULL, NULL);
			cand_push(&out, c);
		}
		/* single columns */
		for (i = 0; i < neq + nrange; i++)
		{
			AttrNumber	a = (i < neq) ? eq[i] : range[i - neq];

			NEWCAND();
			cand_add(c, &a, 1, NULL, NULL);
			cand_push(&out, c);
		}
	}
	else if (has_order)
	{
		NEWCAND();
		cand_add(c, oc->attnos, oc->n, oc->desc, oc->nulls_first);
		cand_push(&out, c);
	}
#undef NEWCAND

	foreach(lc, out)
	{
		pfgCandidate *cc = lfirst(lc);

		if (fill_candidate(cc) && !existing_index_covers(cc))
			valid = lappend(valid, cc);
	}
	return valid;
}

/*
 * pfg_index_analyse
 *		Plan one statement, find its scans of big tables that filter or sort,
 *		and prove the best candidate index for each such table.  With
 *		"want_findings" also describe the plan findings (perfguard.advise).
 *		Errors propagate; the caller decides whether they skip the statement.
 */
void
pfg_index_analyse(const char *text, bool strict, bool check_perms,
				  bool want_findings, stmtAnalysis *out)
{
	Query	   *q;
	PlannedStmt *pstmt;
	List	   *targets = NIL;
	List	   *done_rels = NIL;
	orderCols	oc;
	ListCell   *lc;

	memset(out, 0, sizeof(*out));
	q = pfg_index_analyse_one(text, strict);
	if (q == NULL)
		return;
	if (check_perms && !ExecCheckRTPerms(q->rtable, strict))
		return;
	order_columns(q, &oc);

	pstmt = pfg_hypo_plan(q, text, NULL);
	out->cost_before = pstmt->planTree->total_cost;
	walk_plan(pstmt->planTree, pstmt, false, &targets);
	walk_plan_list(pstmt->subplans, pstmt, false, &targets);

	foreach(lc, targets)
	{
		scanTarget *t = lfirst(lc);
		AttrNumber	eq[PFG_INDEX_MAX_COLS],
					range[PFG_INDEX_MAX_COLS];
		int			neq = 0,
					nrange = 0;
		StringInfoData desc;
		List	   *cands;
		ListCell   *lc2;
		provenIndex *best = NULL;
		char	   *relname = pfg_qualified_rel(t->relid);

		initStringInfo(&desc);
		classify_quals(t->quals, t->scanrelid, t->relid, eq, &neq, range,
					   &nrange, &desc);

		if (want_findings)
		{
			planFinding *f = palloc0(sizeof(planFinding));

			f->relation = relname;
			if (t->quals != NIL && strcmp(t->node, "Seq Scan") == 0)
			{
				f->kind = "seq_scan_large";
				f->detail = psprintf("Seq Scan on %s (%.0f rows) keeps an estimated %.0f rows%s%s",
									 relname, t->reltuples, t->plan_rows,
									 desc.len ? " filtering on " : " after a filter",
									 desc.len ? desc.data : "");
			}
			else if (t->quals != NIL)
			{
				f->kind = "filter_large";
				f->detail = psprintf("%s on %s (%.0f rows) still filters rows after the index%s%s",
									 t->node, relname, t->reltuples,
									 desc.len ? "; conditions: " : "",
									 desc.len ? desc.data : "");
			}
			if (f->kind)
				out->findings = lappend(out->findings, f);
			if (t->under_sort)
			{
				f = palloc0(sizeof(planFinding));
				f->relation = relname;
				f->kind = "sort_large";
				f->detail = psprintf("Sort over a %s of %s (%.0f rows): no index provides the order",
									 t->node, relname, t->reltuples);
				out->findings = lappend(out->findings, f);
			}
		}

		/* one proof per table and statement */
		if (list_member_oid(done_rels, t->relid))
			continue;
		done_rels = lappend_oid(done_rels, t->relid);

		cands = build_candidates(t->relid, eq, neq, range, nrange, &oc);
		foreach(lc2, cands)
		{
			pfgCandidate *c = lfirst(lc2);
			PlannedStmt *p = pfg_hypo_plan(q, text, c);
			double		cost = p->planTree->total_cost;

			elog(DEBUG1, "perfguard: candidate (%s) on %s: cost %.2f (before %.2f)",
				 pfg_hypo_columns_sql(c), relname, cost, out->cost_before);

			if (best == NULL ||
				cost < best->cost_after * 0.99 ||
				(cost <= best->cost_after * 1.01 && c->ncols < best->cand.ncols))
			{
				if (best == NULL)
					best = palloc0(sizeof(provenIndex));
				best->cand = *c;
				best->cost_after = cost;
			}
		}
		if (best && out->cost_before > 0 &&
			best->cost_after <= out->cost_before * (1.0 - PFG_MIN_IMPROVEMENT))
		{
			best->cost_before = out->cost_before;
			best->scan_desc = psprintf("%s on %s%s%s%s", t->node, relname,
									   desc.len ? " filters on " : "",
									   desc.len ? desc.data : "",
									   t->under_sort ? (desc.len ? " and feeds a Sort" : " feeds a Sort") : "");
			out->proven = lappend(out->proven, best);
		}
		else
			out->tried = lappend(out->tried, relname);
	}
}

