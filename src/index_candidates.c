/*-------------------------------------------------------------------------
 *
 * index_candidates.c
 *		The candidate search of the index advisor: which scans of a
 *		statement's plan could use an index, which indexes to try, and which
 *		one proves itself.
 *
 * How a candidate is built and proven (docs/index_advice.md has more):
 *	1. The statement is parsed with raw_parser and analysed (its $n typed
 *	   by inference, or by the bound values of an execution), rewritten and
 *	   planned.  Without values the $n stay Params: the generic plan; with
 *	   the values of a sampled execution (index_evidence.c) they are folded
 *	   into constants: that execution's custom plan.
 *	2. The plan is walked for scans of big tables (at least
 *	   PFG_BIG_TABLE_ROWS rows by the planner's own estimate, or a scan
 *	   costing at least PFG_BIG_SCAN_COST): Seq Scans that filter, feed a
 *	   Sort or feed a join, and Index / Bitmap Heap Scans that still have a
 *	   Filter.  The scans of the partitions of a partitioned table of the
 *	   statement are one target: the partitioned table.
 *	3. The quals give equality columns (=, = ANY, IS NULL, boolean columns)
 *	   and range columns (<, <=, >, >=, LIKE 'prefix%'), as the btree
 *	   operator family of the column (or of an immutable function of it,
 *	   such as lower(email)) sees them; an OR of such quals on different
 *	   columns gives a set of indexes planned together (a BitmapOr); the
 *	   equality clauses of the joins above the scan give join keys; ORDER
 *	   BY gives the order columns.  Candidates: equality columns, then the
 *	   first range column, then the order columns, the shorter variants,
 *	   join keys, and single columns.  A candidate that an existing btree
 *	   index already starts with is dropped.
 *	4. Each candidate is proven: the statement is planned again with the
 *	   candidate as a hypothetical index (hypo_index.c).  The cheapest
 *	   candidate wins (a shorter one when it is within 1%), if it lowers the
 *	   statement's estimated total cost by at least PFG_MIN_IMPROVEMENT.
 *
 * Everything here reads the catalogs and may ERROR; callers run it guarded
 * (report.c, index_evidence.c) or let the error through
 * (perfguard.advise()).
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
#include "catalog/partition.h"
#include "catalog/catalog.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_param.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"

#include "index_candidates.h"

/* A table is "big" from this many rows (the planner's estimate) on ... */
#define PFG_BIG_TABLE_ROWS		10000.0
/* ... or when one scan of it costs this much (about a Seq Scan of 10,000
 * narrow rows with a few quals: 45 pages + 100 + 25 per qual) */
#define PFG_BIG_SCAN_COST		250.0
/* Most candidates tried per scanned table. */
#define PFG_MAX_CANDIDATES		8
/* OR sets (indexes planned together) tried per scanned table. */
#define PFG_MAX_OR_SETS			2

/* A scan of a table that filters, or feeds a sort or a join. */
typedef struct scanTarget
{
	Oid			relid;			/* the table to index (a partition's parent) */
	Oid			scanned;		/* the scanned relation */
	Index		scanrelid;
	Index		parent_rti;		/* range table entry of relid */
	const char *node;			/* "Seq Scan", "Index Scan", ... */
	List	   *quals;
	double		plan_rows;
	double		scan_cost;
	bool		under_sort;
} scanTarget;

/* An equality join clause's column: range table index and attribute. */
typedef struct joinKey
{
	Index		rti;
	AttrNumber	attno;
} joinKey;

typedef struct walkState
{
	PlannedStmt *pstmt;
	List	   *targets;		/* scanTarget * */
	List	   *joinkeys;		/* joinKey * */
} walkState;

/* One key column as the quals see it, on the target's table. */
typedef struct colSpec
{
	AttrNumber	attno;
	Oid			exprfunc;		/* InvalidOid: the column itself */
	Oid			opclass;		/* InvalidOid: the default */
} colSpec;

/* The classified quals of one target. */
typedef struct qualCols
{
	colSpec		eq[PFG_INDEX_MAX_COLS];
	int			neq;
	colSpec		range[PFG_INDEX_MAX_COLS];
	int			nrange;
	colSpec		ors[PFG_MAX_OR_SETS][PFG_HYPO_MAX_SET];
	int			nor[PFG_MAX_OR_SETS];
	int			norsets;
	colSpec		join[PFG_INDEX_MAX_COLS];
	int			njoin;
	StringInfoData desc;		/* "a =, b >" */
} qualCols;

/* The ORDER BY of a statement when it is on columns of one table. */
typedef struct orderCols
{
	Oid			relid;
	int			n;
	AttrNumber	attnos[PFG_INDEX_MAX_COLS];
	bool		desc[PFG_INDEX_MAX_COLS];
	bool		nulls_first[PFG_INDEX_MAX_COLS];
} orderCols;

/* Candidates planned together: one index, or the indexes of an OR. */
typedef struct candSet
{
	int			n;
	pfgCandidate *c[PFG_HYPO_MAX_SET];
} candSet;

/* What classify_clause makes of one qual. */
typedef enum clauseKind
{
	CLAUSE_NONE,
	CLAUSE_EQ,
	CLAUSE_RANGE
} clauseKind;

/*---- static functions ----*/
static void walk_plan(Plan *plan, walkState *ws, bool under_sort);

/*
 * unwrap_statement
 *		The statement to analyse inside the utility commands that run one:
 *		PREPARE name AS stmt (the source text of an EXECUTE), EXPLAIN stmt,
 *		DECLARE cursor FOR stmt.
 */
static Node *
unwrap_statement(Node *stmt)
{
	for (;;)
	{
		if (IsA(stmt, PrepareStmt))
			stmt = ((PrepareStmt *) stmt)->query;
		else if (IsA(stmt, ExplainStmt))
			stmt = ((ExplainStmt *) stmt)->query;
		else if (IsA(stmt, DeclareCursorStmt))
			stmt = ((DeclareCursorStmt *) stmt)->query;
		else
			return stmt;
	}
}

/*
 * pfg_index_parse
 *		Parse, analyse and rewrite one statement into its Query.  The $n are
 *		typed by inference, or by "params" (the values an execution bound).
 *		Parse analysis runs without post_parse_analyze_hook and without a
 *		query id: this is not a statement of the session, and must not count
 *		as one (nor its planning, in pg_stat_statements).  With "strict"
 *		(perfguard.advise) bad input raises the documented errors; otherwise
 *		NULL is returned for anything that is not one SELECT/UPDATE/DELETE
 *		(PREPARE, EXPLAIN and DECLARE are looked through).  Other errors
 *		propagate.
 */
Query *
pfg_index_parse(const char *text, bool strict, ParamListInfo params)
{
	List	   *raw;
	RawStmt    *rs;
	Node	   *stmt;
	Oid		   *ptypes = NULL;
	int			nparams = 0;
	ParseState *pstate;
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
	stmt = strict ? rs->stmt : unwrap_statement(rs->stmt);
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
	if (stmt != rs->stmt)
	{
		RawStmt    *inner = makeNode(RawStmt);

		inner->stmt = stmt;
		inner->stmt_location = rs->stmt_location;
		inner->stmt_len = rs->stmt_len;
		rs = inner;
	}

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = text;
	if (params != NULL)
	{
		int			i;

		if (params->paramFetch != NULL)
			return NULL;		/* dynamic parameters (PL/pgSQL): no values */
		nparams = params->numParams;
		ptypes = palloc0(sizeof(Oid) * Max(nparams, 1));
		for (i = 0; i < nparams; i++)
			ptypes[i] = params->params[i].ptype;
		setup_parse_fixed_parameters(pstate, ptypes, nparams);
	}
	else
		setup_parse_variable_parameters(pstate, &ptypes, &nparams);
	q = transformTopLevelStmt(pstate, rs);
	if (params == NULL)
		check_variable_parameters(pstate, q);
	free_parsestate(pstate);

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

/*---- the plan walk ----*/

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
btree_opfamily_of(Oid typid)
{
	Oid			opclass = GetDefaultOpClass(typid, BTREE_AM_OID);

	return OidIsValid(opclass) ? get_opclass_family(opclass) : InvalidOid;
}

/*
 * join_var
 *		The range table index and attribute of a join clause's Var: after
 *		set_plan_references a join's Vars point at its inputs (OUTER_VAR,
 *		INNER_VAR), and varnosyn/varattnosyn keep the scanned relation's.
 */
static bool
join_var(Node *n, Index *rti, AttrNumber *attno)
{
	Var		   *v;

	n = strip_implicit(n);
	if (n == NULL || !IsA(n, Var))
		return false;
	v = (Var *) n;
	if (v->varlevelsup != 0)
		return false;
	if (IS_SPECIAL_VARNO(v->varno))
	{
		*rti = v->varnosyn;
		*attno = v->varattnosyn;
	}
	else
	{
		*rti = v->varno;
		*attno = v->varattno;
	}
	return *rti > 0 && *attno > 0;
}

/*
 * collect_join_keys
 *		The columns of the equality join clauses "clauses" (Var = Var of two
 *		relations, with a btree equality operator).
 */
static void
collect_join_keys(List *clauses, walkState *ws)
{
	ListCell   *lc;

	foreach(lc, clauses)
	{
		Node	   *n = lfirst(lc);
		OpExpr	   *op;
		Index		r1,
					r2;
		AttrNumber	a1,
					a2;
		Oid			fam;
		joinKey    *k;

		if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == AND_EXPR)
		{
			collect_join_keys(((BoolExpr *) n)->args, ws);
			continue;
		}
		if (!IsA(n, OpExpr) || list_length(((OpExpr *) n)->args) != 2)
			continue;
		op = (OpExpr *) n;
		if (!join_var(linitial(op->args), &r1, &a1) ||
			!join_var(lsecond(op->args), &r2, &a2) || r1 == r2)
			continue;
		fam = btree_opfamily_of(exprType(strip_implicit(linitial(op->args))));
		if (!OidIsValid(fam) ||
			get_op_opfamily_strategy(op->opno, fam) != BTEqualStrategyNumber)
			continue;
		k = palloc(sizeof(joinKey));
		k->rti = r1;
		k->attno = a1;
		ws->joinkeys = lappend(ws->joinkeys, k);
		k = palloc(sizeof(joinKey));
		k->rti = r2;
		k->attno = a2;
		ws->joinkeys = lappend(ws->joinkeys, k);
	}
}

static void
walk_plan_list(List *plans, walkState *ws, bool under_sort)
{
	ListCell   *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), ws, under_sort);
}

/*
 * walk_plan
 *		Collect the scans that filter, or that feed a Sort (directly or
 *		through a Gather, Limit or Append), and the join keys of the joins.
 *		Whether a scan's table is big enough is decided later, per table.
 */
static void
walk_plan(Plan *plan, walkState *ws, bool under_sort)
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
		RangeTblEntry *rte = rt_fetch(scanrelid, ws->pstmt->rtable);

		/* an Index or Bitmap Heap Scan is a target only if it filters */
		if (rte->rtekind == RTE_RELATION &&
			(quals != NIL || nodeTag(plan) == T_SeqScan))
		{
			scanTarget *t = palloc0(sizeof(scanTarget));

			t->relid = t->scanned = rte->relid;
			t->scanrelid = t->parent_rti = scanrelid;
			t->node = node;
			t->quals = quals;
			t->plan_rows = plan->plan_rows;
			t->scan_cost = plan->total_cost;
			t->under_sort = under_sort && nodeTag(plan) == T_SeqScan;
			ws->targets = lappend(ws->targets, t);
		}
		return;
	}

	switch (nodeTag(plan))
	{
		case T_Sort:
		case T_IncrementalSort:
			walk_plan(plan->lefttree, ws, true);
			return;
		case T_Gather:
		case T_GatherMerge:
		case T_Material:
		case T_Limit:
			walk_plan(plan->lefttree, ws, under_sort);
			return;
		case T_Append:
			/* a Sort above sorts all the partitions (or branches) */
			walk_plan_list(((Append *) plan)->appendplans, ws, under_sort);
			break;
		case T_MergeAppend:
			walk_plan_list(((MergeAppend *) plan)->mergeplans, ws, false);
			break;
		case T_SubqueryScan:
			walk_plan(((SubqueryScan *) plan)->subplan, ws, false);
			break;
		case T_CustomScan:
			walk_plan_list(((CustomScan *) plan)->custom_plans, ws, false);
			break;
		case T_NestLoop:
			collect_join_keys(((Join *) plan)->joinqual, ws);
			break;
		case T_HashJoin:
			collect_join_keys(((HashJoin *) plan)->hashclauses, ws);
			collect_join_keys(((Join *) plan)->joinqual, ws);
			break;
		case T_MergeJoin:
			collect_join_keys(((MergeJoin *) plan)->mergeclauses, ws);
			collect_join_keys(((Join *) plan)->joinqual, ws);
			break;
		default:
			break;
	}
	walk_plan(plan->lefttree, ws, false);
	walk_plan(plan->righttree, ws, false);
}

/*
 * resolve_partitions
 *		A scan of a partition of a partitioned table that the statement
 *		names belongs to that table: the advice is one index on it.  The
 *		topmost such ancestor wins; a partition the statement names itself
 *		stays its own target.
 */
static void
resolve_partitions(walkState *ws)
{
	ListCell   *lc;

	foreach(lc, ws->targets)
	{
		scanTarget *t = lfirst(lc);
		List	   *ancestors;
		int			i;

		if (!get_rel_relispartition(t->scanned))
			continue;
		ancestors = get_partition_ancestors(t->scanned);
		/* from the root down: the first one in the range table */
		for (i = list_length(ancestors) - 1; i >= 0 && t->relid == t->scanned; i--)
		{
			Oid			anc = list_nth_oid(ancestors, i);
			ListCell   *lr;
			Index		rti = 0;

			foreach(lr, ws->pstmt->rtable)
			{
				RangeTblEntry *rte = lfirst(lr);

				rti++;
				if (rte->rtekind == RTE_RELATION && rte->relid == anc &&
					rte->inh)
				{
					t->relid = anc;
					t->parent_rti = rti;
					break;
				}
			}
		}
	}
}

/*---- quals ----*/

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
 * key_operand
 *		A qual operand that an index key can match: a column of the scan, or
 *		an immutable function of one column (lower(email)); its type in
 *		*typid.  False otherwise.
 */
static bool
key_operand(Node *n, Index scanrelid, colSpec *cs, Oid *typid)
{
	Var		   *v;

	memset(cs, 0, sizeof(colSpec));
	n = strip_implicit(n);
	if ((v = scan_var(n, scanrelid)) != NULL)
	{
		cs->attno = v->varattno;
		*typid = v->vartype;
		return true;
	}
	if (n && IsA(n, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) n;

		if (f->funcformat == COERCE_EXPLICIT_CALL && !f->funcretset &&
			list_length(f->args) == 1 &&
			(v = scan_var(linitial(f->args), scanrelid)) != NULL &&
			func_volatile(f->funcid) == PROVOLATILE_IMMUTABLE)
		{
			cs->attno = v->varattno;
			cs->exprfunc = f->funcid;
			*typid = f->funcresulttype;
			return true;
		}
	}
	return false;
}

/*
 * like_prefix_kind
 *		For "col LIKE 'pattern'": does the pattern start with a fixed,
 *		non-empty prefix followed by a wildcard (so an index range serves
 *		it)?  An exact pattern (no wildcard) and one that starts with a
 *		wildcard are not prefixes.
 */
static bool
like_prefix_kind(Const *c)
{
	char	   *patt;
	int			i;
	int			prefix = 0;

	if (c->constisnull || (c->consttype != TEXTOID && c->consttype != BPCHAROID &&
						   c->consttype != VARCHAROID))
		return false;
	patt = TextDatumGetCString(c->constvalue);
	for (i = 0; patt[i]; i++)
	{
		if (patt[i] == '%' || patt[i] == '_')
			return prefix > 0;
		if (patt[i] == '\\' && patt[i + 1])
			i++;
		prefix++;
	}
	return false;				/* exact: an equality, left alone */
}

/*
 * pattern_opclass
 *		The pattern operator class that serves LIKE 'prefix%' on a column of
 *		this type whatever its collation.
 */
static Oid
pattern_opclass(Oid typid)
{
	if (typid == BPCHAROID)
		return BPCHAR_BTREE_PATTERN_OPS_OID;
	if (typid == VARCHAROID)
		return VARCHAR_BTREE_PATTERN_OPS_OID;
	return TEXT_BTREE_PATTERN_OPS_OID;
}

/*
 * classify_clause
 *		Is one qual an equality or a range condition an index on one key
 *		column serves?  The column in *cs, a short description ("=", "<",
 *		"LIKE prefix") in *what.
 */
static clauseKind
classify_clause(Node *n, Index scanrelid, colSpec *cs, const char **what)
{
	Oid			typid = InvalidOid;
	Oid			opno = InvalidOid;
	Var		   *var;

	*what = NULL;
	if (IsA(n, OpExpr) && list_length(((OpExpr *) n)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) n;
		Node	   *l = linitial(op->args);
		Node	   *r = lsecond(op->args);

		/* LIKE 'prefix%' on a text column */
		if ((op->opno == OID_TEXT_LIKE_OP || op->opno == OID_BPCHAR_LIKE_OP) &&
			(var = scan_var(l, scanrelid)) != NULL &&
			IsA(strip_implicit(r), Const) &&
			like_prefix_kind((Const *) strip_implicit(r)))
		{
			memset(cs, 0, sizeof(colSpec));
			cs->attno = var->varattno;
			/* a collation other than C sorts differently than LIKE matches */
			if (!lc_collate_is_c(var->varcollid))
				cs->opclass = pattern_opclass(var->vartype);
			*what = "LIKE prefix";
			return CLAUSE_RANGE;
		}
		if (key_operand(l, scanrelid, cs, &typid) && row_independent(r))
			opno = op->opno;
		else if (key_operand(r, scanrelid, cs, &typid) && row_independent(l))
			opno = get_commutator(op->opno);
		else
			return CLAUSE_NONE;
	}
	else if (IsA(n, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) n)->useOr)
	{
		ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) n;

		if (!key_operand(linitial(op->args), scanrelid, cs, &typid) ||
			!row_independent(lsecond(op->args)))
			return CLAUSE_NONE;
		opno = op->opno;
		*what = "= ANY";
	}
	else if (IsA(n, NullTest) && ((NullTest *) n)->nulltesttype == IS_NULL &&
			 key_operand((Node *) ((NullTest *) n)->arg, scanrelid, cs, &typid))
	{
		*what = "IS NULL";
		return CLAUSE_EQ;
	}
	else if ((var = scan_var(n, scanrelid)) && var->vartype == BOOLOID)
	{
		memset(cs, 0, sizeof(colSpec));
		cs->attno = var->varattno;
		*what = "(boolean)";
		return CLAUSE_EQ;
	}
	else if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == NOT_EXPR &&
			 (var = scan_var(linitial(((BoolExpr *) n)->args), scanrelid)) &&
			 var->vartype == BOOLOID)
	{
		memset(cs, 0, sizeof(colSpec));
		cs->attno = var->varattno;
		*what = "(NOT boolean)";
		return CLAUSE_EQ;
	}
	else
		return CLAUSE_NONE;

	if (OidIsValid(opno))
	{
		Oid			fam = btree_opfamily_of(typid);
		int			strategy;

		if (!OidIsValid(fam))
			return CLAUSE_NONE;
		strategy = get_op_opfamily_strategy(opno, fam);
		if (strategy == BTEqualStrategyNumber)
		{
			if (*what == NULL)
				*what = "=";
			return CLAUSE_EQ;
		}
		if (strategy >= BTLessStrategyNumber &&
			strategy <= BTGreaterStrategyNumber && *what == NULL)
		{
			*what = (strategy == BTLessStrategyNumber) ? "<" :
				(strategy == BTLessEqualStrategyNumber) ? "<=" :
				(strategy == BTGreaterEqualStrategyNumber) ? ">=" : ">";
			return CLAUSE_RANGE;
		}
	}
	return CLAUSE_NONE;
}

static bool
same_col(const colSpec *a, const colSpec *b)
{
	return a->attno == b->attno && a->exprfunc == b->exprfunc &&
		a->opclass == b->opclass;
}

static void
add_col(colSpec *cols, int *n, const colSpec *cs)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (same_col(&cols[i], cs))
			return;
	if (*n < PFG_INDEX_MAX_COLS)
		cols[(*n)++] = *cs;
}

/* "email", "lower(email)": a key column named for the reason text. */
static char *
col_name(Oid relid, const colSpec *cs)
{
	const char *att = quote_identifier(get_attname(relid, cs->attno, false));

	if (OidIsValid(cs->exprfunc))
		return psprintf("%s(%s)", get_func_name(cs->exprfunc), att);
	return pstrdup(att);
}

/*
 * map_col
 *		A column of the scanned relation (a partition) as the same column of
 *		the target table, matched by name; false when it has none.
 */
static bool
map_col(colSpec *cs, Oid from, Oid to)
{
	if (from != to)
	{
		cs->attno = get_attnum(to, get_attname(from, cs->attno, false));
		if (cs->attno == InvalidAttrNumber)
			return false;
	}
	return true;
}

/*
 * classify_or
 *		An OR whose arms each have an indexable clause: the distinct key
 *		columns of its arms (one per arm: an arm that is an AND gives its
 *		first).  One column: an ordinary equality or range; several: a set
 *		of indexes for a BitmapOr.
 */
static void
classify_or(BoolExpr *or, scanTarget *t, qualCols *qc)
{
	colSpec		cols[PFG_HYPO_MAX_SET];
	int			ncols = 0;
	bool		all_eq = true;
	ListCell   *lc;
	StringInfoData d;
	int			i;

	initStringInfo(&d);
	foreach(lc, or->args)
	{
		Node	   *arm = lfirst(lc);
		List	   *conj = (IsA(arm, BoolExpr) && ((BoolExpr *) arm)->boolop == AND_EXPR) ?
		((BoolExpr *) arm)->args : list_make1(arm);
		ListCell   *lc2;
		colSpec		cs;
		clauseKind	kind = CLAUSE_NONE;
		const char *what = NULL;

		foreach(lc2, conj)
		{
			kind = classify_clause(lfirst(lc2), t->scanrelid, &cs, &what);
			if (kind != CLAUSE_NONE)
				break;
		}
		if (kind == CLAUSE_NONE || !map_col(&cs, t->scanned, t->relid))
			return;				/* an arm no index serves: a Seq Scan anyway */
		if (kind != CLAUSE_EQ)
			all_eq = false;
		for (i = 0; i < ncols; i++)
			if (same_col(&cols[i], &cs))
				break;
		if (i == ncols)
		{
			if (ncols == PFG_HYPO_MAX_SET)
				return;
			cols[ncols++] = cs;
			appendStringInfo(&d, "%s%s %s", ncols > 1 ? " OR " : "",
							 col_name(t->relid, &cs), what);
		}
	}
	if (ncols == 0)
		return;
	appendStringInfo(&qc->desc, "%s(%s)", qc->desc.len ? ", " : "", d.data);
	if (ncols == 1)
	{
		if (all_eq)
			add_col(qc->eq, &qc->neq, &cols[0]);
		else
			add_col(qc->range, &qc->nrange, &cols[0]);
		return;
	}
	if (qc->norsets < PFG_MAX_OR_SETS)
	{
		memcpy(qc->ors[qc->norsets], cols, sizeof(colSpec) * ncols);
		qc->nor[qc->norsets++] = ncols;
	}
}

/*
 * classify_quals
 *		Sort the target's quals into equality columns, range columns and OR
 *		sets, on the target's table (a partition's columns are mapped to
 *		its parent's), and describe them for the reason text ("a =, b >").
 */
static void
classify_quals(scanTarget *t, qualCols *qc)
{
	ListCell   *lc;
	List	   *conj = NIL;

	foreach(lc, t->quals)
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
		colSpec		cs;
		const char *what;
		clauseKind	kind;

		if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == OR_EXPR)
		{
			classify_or((BoolExpr *) n, t, qc);
			continue;
		}
		kind = classify_clause(n, t->scanrelid, &cs, &what);
		if (kind == CLAUSE_NONE || !map_col(&cs, t->scanned, t->relid))
			continue;
		if (kind == CLAUSE_EQ)
			add_col(qc->eq, &qc->neq, &cs);
		else
			add_col(qc->range, &qc->nrange, &cs);
		appendStringInfo(&qc->desc, "%s%s %s", qc->desc.len ? ", " : "",
						 col_name(t->relid, &cs), what);
	}
}

/*
 * target_join_keys
 *		The join keys on the target's scan (or on its partitioned table, as
 *		a join above an Append sees it), as columns of the target's table.
 */
static void
target_join_keys(walkState *ws, scanTarget *t, qualCols *qc)
{
	ListCell   *lc;

	foreach(lc, ws->joinkeys)
	{
		joinKey    *k = lfirst(lc);
		colSpec		cs;

		memset(&cs, 0, sizeof(cs));
		cs.attno = k->attno;
		if (k->rti == t->scanrelid)
		{
			if (!map_col(&cs, t->scanned, t->relid))
				continue;
		}
		else if (k->rti != t->parent_rti)
			continue;
		add_col(qc->join, &qc->njoin, &cs);
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
	int			ndesc_default = 0;
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

/*---- candidates ----*/

/*
 * existing_index_covers
 *		Does a valid, non-partial btree index of the table start with the
 *		candidate's columns (in order)?  Then the planner already had it.
 */
static bool
existing_index_covers(const pfgCandidate *c)
{
	Relation	rel = relation_open(c->key.relid, AccessShareLock);
	bool		found = OidIsValid(pfg_hypo_covering_index(rel, &c->key));

	relation_close(rel, AccessShareLock);
	return found;
}

/* Append key columns (ascending unless given) to a candidate, skipping repeats. */
static void
cand_add(pfgCandidate *c, const colSpec *cols, int n,
		 const bool *desc, const bool *nulls_first)
{
	pfgIndexKey *k = &c->key;
	int			i,
				j;

	for (i = 0; i < n && k->ncols < PFG_INDEX_MAX_COLS; i++)
	{
		bool		dup = false;

		for (j = 0; j < k->ncols; j++)
			if (k->attnos[j] == cols[i].attno &&
				k->exprfunc[j] == cols[i].exprfunc)
				dup = true;
		if (dup)
			continue;
		k->attnos[k->ncols] = cols[i].attno;
		k->exprfunc[k->ncols] = cols[i].exprfunc;
		k->opclass[k->ncols] = cols[i].opclass;
		k->desc[k->ncols] = desc ? desc[i] : false;
		k->nulls_first[k->ncols] = nulls_first ? nulls_first[i] : false;
		k->ncols++;
	}
}

static pfgCandidate *
new_candidate(Oid relid)
{
	pfgCandidate *c = palloc0(sizeof(pfgCandidate));

	c->key.relid = relid;
	return c;
}

/* Add a one-index candidate unless it repeats one or the list is full. */
static void
cand_push(List **list, pfgCandidate *c)
{
	ListCell   *lc;
	candSet    *s;

	if (c->key.ncols == 0 || list_length(*list) >= PFG_MAX_CANDIDATES)
		return;
	foreach(lc, *list)
	{
		candSet    *x = lfirst(lc);

		if (x->n == 1 && pfg_index_key_equal(&x->c[0]->key, &c->key))
			return;
	}
	s = palloc0(sizeof(candSet));
	s->n = 1;
	s->c[0] = c;
	*list = lappend(*list, s);
}

/*
 * build_candidates
 *		The candidate indexes (and OR sets) for one target (see the file
 *		header), with their catalog facts, less those an existing index
 *		already provides.
 */
static List *
build_candidates(Oid relid, qualCols *qc, const orderCols *oc)
{
	List	   *out = NIL;
	List	   *valid = NIL;
	ListCell   *lc;
	bool		has_order = (oc->n > 0 && oc->relid == relid);
	colSpec		ocols[PFG_INDEX_MAX_COLS];
	pfgCandidate *c;
	int			i;

	memset(ocols, 0, sizeof(ocols));
	for (i = 0; i < oc->n; i++)
		ocols[i].attno = oc->attnos[i];

	if (qc->neq + qc->nrange > 0)
	{
		/* equality, then the first range column, then the order */
		c = new_candidate(relid);
		cand_add(c, qc->eq, qc->neq, NULL, NULL);
		cand_add(c, qc->range, Min(qc->nrange, 1), NULL, NULL);
		if (has_order)
		{
			pfgCandidate *full = new_candidate(relid);

			*full = *c;
			cand_add(full, ocols, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, full);
		}
		cand_push(&out, c);
		/* equality, then the order (the range filtered in the heap) */
		if (has_order && qc->nrange > 0)
		{
			c = new_candidate(relid);
			cand_add(c, qc->eq, qc->neq, NULL, NULL);
			cand_add(c, ocols, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, c);
		}
		/* equality only */
		if (qc->neq > 0 && (qc->nrange > 0 || has_order))
		{
			c = new_candidate(relid);
			cand_add(c, qc->eq, qc->neq, NULL, NULL);
			cand_push(&out, c);
		}
	}
	else if (has_order)
	{
		c = new_candidate(relid);
		cand_add(c, ocols, oc->n, oc->desc, oc->nulls_first);
		cand_push(&out, c);
	}
	/* join keys: for a nested loop probing the table */
	if (qc->njoin > 0)
	{
		c = new_candidate(relid);
		cand_add(c, qc->join, qc->njoin, NULL, NULL);
		cand_push(&out, c);
		if (qc->neq > 0)
		{
			c = new_candidate(relid);
			cand_add(c, qc->eq, qc->neq, NULL, NULL);
			cand_add(c, qc->join, qc->njoin, NULL, NULL);
			cand_push(&out, c);
		}
	}
	/* single columns */
	for (i = 0; i < qc->neq + qc->nrange; i++)
	{
		colSpec    *a = (i < qc->neq) ? &qc->eq[i] : &qc->range[i - qc->neq];

		c = new_candidate(relid);
		cand_add(c, a, 1, NULL, NULL);
		cand_push(&out, c);
	}

	foreach(lc, out)
	{
		candSet    *s = lfirst(lc);

		if (pfg_hypo_fill(s->c[0]) && !existing_index_covers(s->c[0]))
			valid = lappend(valid, s);
	}

	/* OR sets: each arm's column alone; an existing index serves its arm */
	for (i = 0; i < qc->norsets; i++)
	{
		candSet    *s = palloc0(sizeof(candSet));
		int			j;

		for (j = 0; j < qc->nor[i]; j++)
		{
			c = new_candidate(relid);
			cand_add(c, &qc->ors[i][j], 1, NULL, NULL);
			if (!pfg_hypo_fill(c))
				break;
			if (!existing_index_covers(c))
				s->c[s->n++] = c;
		}
		if (j == qc->nor[i] && s->n > 0)
			valid = lappend(valid, s);
	}
	return valid;
}

static int
set_ncols(const candSet *s)
{
	int			i,
				n = 0;

	for (i = 0; i < s->n; i++)
		n += s->c[i]->key.ncols;
	return n;
}

/*---- the analysis of one statement ----*/

/*
 * describe_target
 *		"Seq Scan on public.t" or "Seq Scan on 3 partitions of public.t",
 *		with what the scan filters on and feeds.
 */
static char *
describe_target(Oid relid, const char *node, const char *relname, int nparts,
				qualCols *qc, bool under_sort)
{
	StringInfoData b;
	int			i;

	initStringInfo(&b);
	if (nparts > 0)
		appendStringInfo(&b, "%s on %d partition%s of %s", node, nparts,
						 nparts == 1 ? "" : "s", relname);
	else
		appendStringInfo(&b, "%s on %s", node, relname);
	if (qc->desc.len)
		appendStringInfo(&b, " filters on %s", qc->desc.data);
	if (under_sort)
		appendStringInfo(&b, "%s feeds a Sort", qc->desc.len ? " and" : "");
	if (qc->njoin > 0)
	{
		appendStringInfo(&b, "%s is joined on ",
						 (qc->desc.len || under_sort) ? " and" : "");
		for (i = 0; i < qc->njoin; i++)
			appendStringInfo(&b, "%s%s", i ? ", " : "",
							 col_name(relid, &qc->join[i]));
	}
	return b.data;
}

/*
 * add_findings
 *		perfguard.advise(): the plan findings of one target.
 */
static void
add_findings(stmtAnalysis *out, const char *node, const char *relname,
			 double reltuples, double plan_rows, bool filters,
			 bool under_sort, qualCols *qc)
{
	planFinding *f = palloc0(sizeof(planFinding));

	f->relation = pstrdup(relname);
	if (filters && strcmp(node, "Seq Scan") == 0)
	{
		f->kind = "seq_scan_large";
		f->detail = psprintf("Seq Scan on %s (%.0f rows) keeps an estimated %.0f rows%s%s",
							 relname, reltuples, plan_rows,
							 qc->desc.len ? " filtering on " : " after a filter",
							 qc->desc.len ? qc->desc.data : "");
	}
	else if (filters)
	{
		f->kind = "filter_large";
		f->detail = psprintf("%s on %s (%.0f rows) still filters rows after the index%s%s",
							 node, relname, reltuples,
							 qc->desc.len ? "; conditions: " : "",
							 qc->desc.len ? qc->desc.data : "");
	}
	else if (qc->njoin > 0)
	{
		f->kind = "seq_scan_large";
		f->detail = psprintf("Seq Scan on %s (%.0f rows) reads the whole table for a join",
							 relname, reltuples);
	}
	if (f->kind)
		out->findings = lappend(out->findings, f);
	if (under_sort)
	{
		f = palloc0(sizeof(planFinding));
		f->relation = pstrdup(relname);
		f->kind = "sort_large";
		f->detail = psprintf("Sort over a %s of %s (%.0f rows): no index provides the order",
							 node, relname, reltuples);
		out->findings = lappend(out->findings, f);
	}
}

/*
 * pfg_index_analyse
 *		Plan one statement (generic, or with the bound values "params"),
 *		find its scans of big tables that filter, sort or join, and prove the
 *		best candidate index (or OR set) for each such table.  Flags:
 *		PFG_ANALYSE_*.  Errors propagate; the caller decides whether they
 *		skip the statement.
 */
void
pfg_index_analyse(const char *text, ParamListInfo params, int flags,
				  stmtAnalysis *out)
{
	bool		strict = (flags & PFG_ANALYSE_STRICT) != 0;
	Query	   *q;
	PlannedStmt *pstmt;
	walkState	ws;
	List	   *done_rels = NIL;
	orderCols	oc;
	ListCell   *lc;

	memset(out, 0, sizeof(*out));
	q = pfg_index_parse(text, strict, params);
	if (q == NULL)
		return;
	if ((flags & PFG_ANALYSE_CHECK_PERMS) && !ExecCheckRTPerms(q->rtable, strict))
		return;
	order_columns(q, &oc);

	pstmt = pfg_hypo_plan(q, text, NULL, 0, params);
	out->cost_before = pstmt->planTree->total_cost;
	memset(&ws, 0, sizeof(ws));
	ws.pstmt = pstmt;
	walk_plan(pstmt->planTree, &ws, false);
	walk_plan_list(pstmt->subplans, &ws, false);
	resolve_partitions(&ws);

	foreach(lc, ws.targets)
	{
		scanTarget *t = lfirst(lc);
		qualCols	qc;
		List	   *cands;
		ListCell   *lc2;
		candSet    *best = NULL;
		double		best_cost = 0;
		double		reltuples = 0,
					plan_rows = 0,
					scan_cost = 0;
		int			nparts = 0;
		bool		filters = false,
					under_sort = false;
		char	   *relname;

		/* one proof per table and statement: this target and its siblings */
		if (list_member_oid(done_rels, t->relid))
			continue;
		done_rels = lappend_oid(done_rels, t->relid);

		memset(&qc, 0, sizeof(qc));
		initStringInfo(&qc.desc);
		foreach(lc2, ws.targets)
		{
			scanTarget *s = lfirst(lc2);

			if (s->relid != t->relid)
				continue;
			if (s->parent_rti != t->parent_rti && s->scanrelid != t->scanrelid)
				continue;		/* another scan of the table: not proven here */
			reltuples += Max(pfg_hypo_rel_tuples(s->scanned), 0);
			plan_rows += s->plan_rows;
			scan_cost += s->scan_cost;
			filters |= (s->quals != NIL);
			under_sort |= s->under_sort;
			if (s->relid != s->scanned)
				nparts++;
			if (s == t)
				classify_quals(s, &qc);
			target_join_keys(&ws, s, &qc);
		}
		if (!filters && !under_sort && qc.njoin == 0)
			continue;			/* a plain Seq Scan of everything */
		if (reltuples < PFG_BIG_TABLE_ROWS && scan_cost < PFG_BIG_SCAN_COST)
			continue;			/* small: a Seq Scan there is fine */
		if (IsCatalogRelationOid(t->relid))
			continue;			/* no one can index a system catalog */

		relname = pfg_qualified_rel(t->relid);
		if (flags & PFG_ANALYSE_FINDINGS)
			add_findings(out, t->node, relname, reltuples, plan_rows, filters,
						 under_sort, &qc);

		cands = build_candidates(t->relid, &qc, &oc);
		foreach(lc2, cands)
		{
			candSet    *s = lfirst(lc2);
			double		cost = pfg_hypo_plan_cost(q, text, s->c, s->n, params);

			elog(DEBUG1, "perfguard: candidate (%s)%s on %s: cost %.2f (before %.2f)",
				 pfg_hypo_columns_sql(&s->c[0]->key), s->n > 1 ? " with others" : "",
				 relname, cost, out->cost_before);

			if (best == NULL || cost < best_cost * 0.99 ||
				(cost <= best_cost * 1.01 && set_ncols(s) < set_ncols(best)))
			{
				best = s;
				best_cost = cost;
			}
		}
		if (best && out->cost_before > 0 &&
			best_cost <= out->cost_before * (1.0 - PFG_MIN_IMPROVEMENT))
		{
			provenIndex *p = palloc0(sizeof(provenIndex));
			int			i;

			p->ncand = best->n;
			for (i = 0; i < best->n; i++)
				p->cand[i] = *best->c[i];
			p->relid = t->relid;
			p->nparts = nparts;
			p->cost_before = out->cost_before;
			p->cost_after = best_cost;
			p->reltuples = reltuples;
			p->plan_rows = plan_rows;
			p->scan_desc = describe_target(t->relid, t->node, relname, nparts,
										   &qc, under_sort);
			out->proven = lappend(out->proven, p);
		}
		else
			out->tried = lappend(out->tried, relname);
	}
}
