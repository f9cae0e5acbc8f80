/*-------------------------------------------------------------------------
 *
 * nplusone_fix.c
 *		The exact fix for an N+1 suspect, derived from the statements'
 *		normalised texts and the foreign keys of the catalog.
 *
 * The child (repeated) statement is re-analysed from its normalised text
 * (parameter types inferred), and its repeated filter found: a qual
 * "column = $n" (or "column = ANY(...)") on a base table.  The parent
 * statement is analysed the same way for its tables.  Then, in order:
 *	- deferred field: the child reads a few columns of one of the parent's
 *	  tables by primary key: remove the column from .only()/.defer();
 *	- aggregate per row: the child aggregates over a table whose filter
 *	  column references a parent table: annotate(Count(...));
 *	- forward FK: a parent table references the child's filter column:
 *	  JOIN / select_related / includes;
 *	- many-to-many: the filter column is in a link table that references a
 *	  parent table and another table of the child: prefetch_related;
 *	- reverse FK: the child's filter column references a parent table:
 *	  prefetch_related / includes.
 * Nothing here runs on the hot path: it is called by the views, and by the
 * guard settings once per request and fingerprint (scope.c calls it through
 * the function pointer perfguard.c registers, as the hot-path layer may not
 * call up into this one).  The analysis runs in a guarded subtransaction
 * (report.c): an error in it gives the generic suggestion.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/nplusone_fix.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_operator.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pg_list.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"

#include "nplusone_fix.h"
#include "report.h"

PG_FUNCTION_INFO_V1(perfguard_n_plus_one_fix);

/* What the analysis of one statement tells. */
typedef struct stmtShape
{
	Query	   *query;
	List	   *relids;			/* OIDs of the base tables */
	Oid			filter_rel;		/* table of the repeated filter */
	AttrNumber	filter_att;		/* its column */
	int			ncols;			/* target list entries */
	bool		has_aggs;
} stmtShape;

/*
 * analyse_text
 *		Parse and analyse a normalised statement; NULL if it is not one plain
 *		query (or does not analyse).  Errors propagate: callers wrap.
 */
static Query *
analyse_text(const char *text)
{
	List	   *raw;
	Oid		   *ptypes = NULL;
	int			nparams = 0;
	Query	   *q;

	if (text == NULL)
		return NULL;
	raw = raw_parser(text, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		return NULL;
	q = parse_analyze_varparams(linitial_node(RawStmt, raw), text,
								&ptypes, &nparams, NULL);
	/* a cursor's rows (Django's .iterator()) come from its query */
	if (q->utilityStmt != NULL && IsA(q->utilityStmt, DeclareCursorStmt))
	{
		Node	   *inner = ((DeclareCursorStmt *) q->utilityStmt)->query;

		if (inner == NULL || !IsA(inner, Query))
			return NULL;
		q = (Query *) inner;
	}
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		return NULL;
	return q;
}

static Node *
strip_relabel(Node *n)
{
	while (n && (IsA(n, RelabelType) || IsA(n, CoerceViaIO) ||
				 (IsA(n, FuncExpr) &&
				  ((FuncExpr *) n)->funcformat == COERCE_IMPLICIT_CAST)))
	{
		if (IsA(n, RelabelType))
			n = (Node *) ((RelabelType *) n)->arg;
		else if (IsA(n, CoerceViaIO))
			n = (Node *) ((CoerceViaIO *) n)->arg;
		else
			n = linitial(((FuncExpr *) n)->args);
	}
	return n;
}

static bool
is_param_like(Node *n)
{
	n = strip_relabel(n);
	if (n == NULL)
		return false;
	if (IsA(n, Param) || IsA(n, Const))
		return true;
	if (IsA(n, ArrayExpr))
	{
		ListCell   *lc;

		foreach(lc, ((ArrayExpr *) n)->elements)
			if (!is_param_like(lfirst(lc)))
				return false;
		return true;
	}
	return false;
}

/*
 * find_filter
 *		Look for "Var = Param" (or "Var = ANY(params)") among the AND-ed
 *		quals; set the shape's filter_rel/filter_att.
 */
static void
find_filter(stmtShape *s, Node *qual)
{
	List	   *conj;
	ListCell   *lc;

	if (qual == NULL)
		return;
	if (IsA(qual, BoolExpr) && ((BoolExpr *) qual)->boolop == AND_EXPR)
		conj = ((BoolExpr *) qual)->args;
	else if (IsA(qual, List))
		conj = (List *) qual;
	else
		conj = list_make1(qual);

	foreach(lc, conj)
	{
		Node	   *n = lfirst(lc);
		List	   *args = NIL;
		Oid			opno = InvalidOid;
		Var		   *var = NULL;
		Node	   *other = NULL;

		if (IsA(n, OpExpr))
		{
			args = ((OpExpr *) n)->args;
			opno = ((OpExpr *) n)->opno;
		}
		else if (IsA(n, ScalarArrayOpExpr))
		{
			args = ((ScalarArrayOpExpr *) n)->args;
			opno = ((ScalarArrayOpExpr *) n)->opno;
		}
		else
			continue;
		if (list_length(args) != 2)
			continue;
		{
			char	   *opname = get_opname(opno);

			if (opname == NULL || strcmp(opname, "=") != 0)
				continue;
		}
		if (IsA(strip_relabel(linitial(args)), Var) && is_param_like(lsecond(args)))
		{
			var = (Var *) strip_relabel(linitial(args));
			other = lsecond(args);
		}
		else if (IsA(strip_relabel(lsecond(args)), Var) && is_param_like(linitial(args)))
		{
			var = (Var *) strip_relabel(lsecond(args));
			other = linitial(args);
		}
		(void) other;
		if (var && var->varlevelsup == 0 && var->varattno > 0)
		{
			RangeTblEntry *rte = rt_fetch(var->varno, s->query->rtable);

			if (rte->rtekind == RTE_RELATION)
			{
				s->filter_rel = rte->relid;
				s->filter_att = var->varattno;
				return;
			}
		}
	}
}

static bool
collect_quals(Node *node, stmtShape *s)
{
	if (node == NULL || s->filter_rel != InvalidOid)
		return false;
	if (IsA(node, FromExpr))
	{
		FromExpr   *f = (FromExpr *) node;
		ListCell   *lc;

		find_filter(s, f->quals);
		foreach(lc, f->fromlist)
			collect_quals(lfirst(lc), s);
		return false;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		find_filter(s, j->quals);
		collect_quals(j->larg, s);
		collect_quals(j->rarg, s);
	}
	return false;
}

static void
shape_of(const char *text, stmtShape *s)
{
	ListCell   *lc;

	memset(s, 0, sizeof(*s));
	s->query = analyse_text(text);
	if (s->query == NULL)
		return;
	foreach(lc, s->query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION)
			s->relids = list_append_unique_oid(s->relids, rte->relid);
	}
	s->has_aggs = s->query->hasAggs;
	s->ncols = list_length(s->query->targetList);
	collect_quals((Node *) s->query->jointree, s);
}

/* Foreign keys of "relid" (a copy, the relcache's list may go away). */
static List *
fkeys_of(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *l = copyObject(RelationGetFKeyList(rel));

	table_close(rel, AccessShareLock);
	return l;
}

static bool
is_pkey_column(Oid relid, AttrNumber att)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Bitmapset  *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	bool		res;

	res = bms_is_member(att - FirstLowInvalidHeapAttributeNumber, pk);
	table_close(rel, AccessShareLock);
	return res;
}

/* Single-column FK on relid whose column is att; the first found. */
static ForeignKeyCacheInfo *
fkey_from(Oid relid, AttrNumber att, Oid target)
{
	ListCell   *lc;

	foreach(lc, fkeys_of(relid))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);

		if (fk->nkeys == 1 && fk->conkey[0] == att &&
			(target == InvalidOid || fk->confrelid == target))
			return fk;
	}
	return NULL;
}

/* Django's field name for an FK column: "author_id" -> "author". */
static char *
field_name(const char *col)
{
	int			n = strlen(col);

	if (n > 3 && strcmp(col + n - 3, "_id") == 0)
		return pnstrdup(col, n - 3);
	return pstrdup(col);
}

/* Model part of a table name: "blog_scene" -> "scene" (after the app prefix
 * shared with the other table, if any). */
static char *
model_name(const char *table, const char *other)
{
	int			i = 0;
	int			cut = 0;

	while (table[i] && other && table[i] == other[i])
	{
		if (table[i] == '_')
			cut = i + 1;
		i++;
	}
	if (cut == 0)
	{
		const char *u = strchr(table, '_');

		/* Django's "<app>_<model>": drop the app label */
		if (u && strchr(u + 1, '_') == NULL && other == NULL)
			cut = u - table + 1;
	}
	return pstrdup(table + cut);
}

static char *
plural(const char *s)
{
	int			n = strlen(s);

	if (n > 0 && s[n - 1] == 's')
		return pstrdup(s);
	if (n > 1 && s[n - 1] == 'y' && strchr("aeiou", s[n - 2]) == NULL)
		return psprintf("%.*sies", n - 1, s);
	return psprintf("%ss", s);
}

static const char *
qi(Oid relid)
{
	return quote_identifier(get_rel_name(relid));
}

static const char *
qa(Oid relid, AttrNumber att)
{
	return quote_identifier(get_attname(relid, att, false));
}

typedef struct fixArgs
{
	const char *parent_query;
	const char *query;
	StringInfo	buf;
	char	   *table_name;
	char	   *column_name;
} fixArgs;

/*
 * derive_fix
 *		The body of pfg_n_plus_one_fix, run guarded.  May ERROR.  Long (about
 *		170 lines) because it tries the cases of the file header in order,
 *		each a few lines over the same two statement shapes; the first that
 *		matches writes the fix.
 */
static void
derive_fix(void *arg)
{
	fixArgs    *a = (fixArgs *) arg;
	StringInfo	buf = a->buf;
	stmtShape	child,
				parent;
	ListCell   *lc;
	Oid			crel;
	AttrNumber	catt;

	shape_of(a->query, &child);
	shape_of(a->parent_query, &parent);
	crel = child.filter_rel;
	catt = child.filter_att;

	if (OidIsValid(crel))
	{
		a->table_name = get_rel_name(crel);
		a->column_name = get_attname(crel, catt, false);
	}

	/* deferred field loaded per row */
	if (OidIsValid(crel) && list_member_oid(parent.relids, crel) &&
		list_length(child.relids) == 1 && !child.has_aggs &&
		is_pkey_column(crel, catt))
	{
		StringInfoData cols;
		bool		first = true;

		initStringInfo(&cols);
		foreach(lc, child.query->targetList)
		{
			TargetEntry *te = lfirst(lc);
			Var		   *v = (Var *) strip_relabel((Node *) te->expr);

			if (te->resjunk || !IsA(v, Var) || v->varattno == catt)
				continue;
			appendStringInfo(&cols, "%s'%s'", first ? "" : ", ",
							 get_attname(crel, v->varattno, false));
			first = false;
		}
		appendStringInfo(buf,
						 "deferred field loaded per row: %s of %s is fetched by primary key once per row. "
						 "SQL: select it in the parent query. Django: remove %s from .only()/.defer(). "
						 "Rails: add it to .select(...)",
						 cols.len ? cols.data : "a column", qi(crel),
						 cols.len ? cols.data : "the field");
	}

	/* aggregate per row */
	if (buf->len == 0 && OidIsValid(crel) && child.has_aggs)
	{
		foreach(lc, parent.relids)
		{
			Oid			prel = lfirst_oid(lc);
			ForeignKeyCacheInfo *fk = fkey_from(crel, catt, prel);

			if (fk)
			{
				char	   *pm = model_name(get_rel_name(prel), get_rel_name(crel));
				char	   *cm = model_name(get_rel_name(crel), get_rel_name(prel));

				appendStringInfo(buf,
								 "aggregate per row: SQL: LEFT JOIN (SELECT %s, count(*) AS n FROM %s GROUP BY %s) c ON c.%s = %s.%s in the parent query. "
								 "Django: annotate(%s_count=Count('%s')) on the %s queryset. "
								 "Rails: %c%s.left_joins(:%s).group(:id).count, or a counter_cache",
								 qa(crel, catt), qi(crel), qa(crel, catt),
								 qa(crel, catt), qi(prel), qa(prel, fk->confkey[0]),
								 cm, cm, pm, pg_toupper((unsigned char) pm[0]),
								 pm + 1, plural(cm));
				break;
			}
		}
	}

	/* forward FK: a parent table references the child's filter column */
	if (buf->len == 0 && OidIsValid(crel))
	{
		foreach(lc, parent.relids)
		{
			Oid			prel = lfirst_oid(lc);
			ListCell   *lc2;

			foreach(lc2, fkeys_of(prel))
			{
				ForeignKeyCacheInfo *fk = lfirst(lc2);
				char	   *f;

				if (fk->nkeys != 1 || fk->confrelid != crel ||
					fk->confkey[0] != catt)
					continue;
				f = field_name(get_attname(prel, fk->conkey[0], false));
				appendStringInfo(buf,
								 "JOIN %s ON %s.%s = %s.%s / Django: select_related('%s') / Rails: includes(:%s)",
								 qi(crel), qi(crel), qa(crel, catt),
								 qi(prel), qa(prel, fk->conkey[0]), f, f);
				break;
			}
			if (buf->len)
				break;
		}
	}

	/* many-to-many through a link table */
	if (buf->len == 0 && OidIsValid(crel) && list_length(child.relids) >= 2)
	{
		foreach(lc, parent.relids)
		{
			Oid			prel = lfirst_oid(lc);
			ForeignKeyCacheInfo *fk = fkey_from(crel, catt, prel);
			ListCell   *lc2;

			if (fk == NULL)
				continue;
			foreach(lc2, fkeys_of(crel))
			{
				ForeignKeyCacheInfo *other = lfirst(lc2);
				char	   *link;
				char	   *pname;
				char	   *f;
				int			pl;

				if (other->nkeys != 1 || other == fk ||
					other->conkey[0] == catt ||
					!list_member_oid(child.relids, other->confrelid) ||
					other->confrelid == crel)
					continue;
				/* Django names the link table "<parent table>_<field>" */
				link = get_rel_name(crel);
				pname = get_rel_name(prel);
				pl = strlen(pname);
				if (strncmp(link, pname, pl) == 0 && link[pl] == '_')
					f = pstrdup(link + pl + 1);
				else
					f = plural(model_name(get_rel_name(other->confrelid), pname));
				appendStringInfo(buf,
								 "JOIN %s ON %s.%s = %s.%s JOIN %s ON %s.%s = %s.%s / Django: prefetch_related('%s') / Rails: includes(:%s)",
								 qi(crel), qi(crel), qa(crel, catt),
								 qi(prel), qa(prel, fk->confkey[0]),
								 qi(other->confrelid), qi(other->confrelid),
								 qa(other->confrelid, other->confkey[0]),
								 qi(crel), qa(crel, other->conkey[0]),
								 f, f);
				break;
			}
			if (buf->len)
				break;
		}
	}

	/* reverse FK: the child's filter column references a parent table */
	if (buf->len == 0 && OidIsValid(crel))
	{
		foreach(lc, parent.relids)
		{
			Oid			prel = lfirst_oid(lc);
			ForeignKeyCacheInfo *fk = fkey_from(crel, catt, prel);
			char	   *cm;

			if (fk == NULL)
				continue;
			cm = model_name(get_rel_name(crel), get_rel_name(prel));
			appendStringInfo(buf,
							 "JOIN %s ON %s.%s = %s.%s, or one query with %s = ANY(...) for all parents / "
							 "Django: prefetch_related('%s_set') (or the ForeignKey's related_name) / Rails: includes(:%s)",
							 qi(crel), qi(crel), qa(crel, catt),
							 qi(prel), qa(prel, fk->confkey[0]),
							 qa(crel, catt), cm, plural(cm));
			break;
		}
	}
}

/*
 * pfg_n_plus_one_fix
 *		See the file header.  Sets table_name and column_name to the repeated
 *		filter (when found) and *suggestion to the fix (always, a generic one
 *		when nothing more precise is known).  Errors in the analysis are
 *		caught: the generic suggestion is returned.
 */
void
pfg_n_plus_one_fix(const char *parent_query, const char *query,
				   char **table_name, char **column_name, char **suggestion)
{
	StringInfoData buf;
	fixArgs		a;

	initStringInfo(&buf);
	memset(&a, 0, sizeof(a));
	a.parent_query = parent_query;
	a.query = query;
	a.buf = &buf;
	if (!pfg_report_guarded(derive_fix, &a, CurrentMemoryContext))
	{
		resetStringInfo(&buf);
		a.table_name = a.column_name = NULL;
	}
	*table_name = a.table_name;
	*column_name = a.column_name;

	if (buf.len == 0)
	{
		if (*table_name && *column_name)
			appendStringInfo(&buf,
							 "load all rows at once: SQL: one query with %s = ANY($1) or a JOIN with the parent query / "
							 "Django: select_related()/prefetch_related() / Rails: includes()",
							 quote_identifier(*column_name));
		else
			appendStringInfoString(&buf,
								   "load the related rows in the parent query: SQL: a JOIN or one query with = ANY($1) / "
								   "Django: select_related()/prefetch_related() / Rails: includes()");
	}
	*suggestion = buf.data;
}

/*
 * perfguard_n_plus_one_fix
 *		perfguard._n_plus_one_fix(parent text, query text): (table_name,
 *		column_name, suggestion) for an N+1 child query and its parent,
 *		derived from the foreign keys of the current database.
 */
Datum
perfguard_n_plus_one_fix(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {true, true, true};
	char	   *parent = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *query = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *table = NULL,
			   *column = NULL,
			   *suggestion = NULL;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pfg_n_plus_one_fix(parent, query, &table, &column, &suggestion);
	if (table)
	{
		values[0] = CStringGetTextDatum(table);
		nulls[0] = false;
	}
	if (column)
	{
		values[1] = CStringGetTextDatum(column);
		nulls[1] = false;
	}
	if (suggestion)
	{
		values[2] = CStringGetTextDatum(suggestion);
		nulls[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
