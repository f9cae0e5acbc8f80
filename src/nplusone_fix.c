/*-------------------------------------------------------------------------
 *
 * nplusone_fix.c
 *		The exact fix for an N+1 suspect or a repeating sequence, derived
 *		from the statements' normalised texts and the catalog, in the
 *		vocabulary of the application's framework.
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
 *	  JOIN / select_related / includes / joinedload;
 *	- many-to-many: the filter column is in a link table that references a
 *	  parent table and another table of the child: prefetch_related /
 *	  includes / selectinload;
 *	- reverse FK: the child's filter column references a parent table:
 *	  prefetch_related / includes / selectinload.
 * "References" is a foreign-key constraint, or, when there is none (Rails'
 * t.references creates none, nor do many SQLAlchemy schemas), the naming
 * conventions of Rails and Django: a column "author_id" refers to the table
 * "author", "authors" or "<app>_author" (by its primary key; irregular
 * plurals such as people are known); such a fix says that it was inferred.
 * Without such a name, a polymorphic "<x>_id" with its "<x>_type", or the
 * only "<x>_id" of a parent table that names no table (an STI class's
 * association), is taken as the relation, as a last guess.  A relation
 * through another table (has_many/has_one :through) is named after the
 * table whose rows the child returns.  When the parent query is not the
 * loop's (the last multi-row SELECT may be the preload of another
 * relation), the table the filter column refers to stands for the parent.
 * A lookup by primary key of columns of a parent table that the parent
 * query did not select is a deferred field; of columns it has, a relation
 * to the same table.
 *
 * A fix is kept in parts (store.h's pfgFix) so that the relations of one
 * loop merge into one suggestion per framework:
 *	Django: .select_related('author').prefetch_related('tags', 'comment_set')
 *	Rails: .includes(:author, :tags, :comments)
 *	SQLAlchemy: .options(joinedload(Post.author), selectinload(Post.tags))
 * fix_text.c writes the suggestion from parts (for one framework, or all
 * three when the requests were not tagged with one) and merges the parts of
 * several findings.
 *
 * Nothing here runs per statement: the fix of a finding is derived once, by
 * the backend that first records it (scope.c calls pfg_fix_derive through the
 * function pointer perfguard.c registers, as the hot-path layer may not call
 * up into this one), by the guard settings once per request and fingerprint,
 * and by the views for a finding that has none stored.  The analysis runs
 * in a guarded subtransaction (report.c): an error in it gives the generic
 * suggestion.
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
#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pg_list.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"

#include "fix_text.h"
#include "nplusone_fix.h"
#include "report.h"
#include "store.h"

PG_FUNCTION_INFO_V1(perfguard_n_plus_one_fix);
PG_FUNCTION_INFO_V1(perfguard_fix_parts);

/* What the analysis of one statement tells. */
typedef struct stmtShape
{
	Query	   *query;
	List	   *relids;			/* OIDs of the base tables */
	Oid			filter_rel;		/* table of the repeated filter */
	AttrNumber	filter_att;		/* its column */
	bool		filter_keylike; /* it is a key ("id", "..._id") */
	Oid			out_rel;		/* the table its rows come from */
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
			char	   *name;
			int			n;
			bool		keylike;

			if (rte->rtekind != RTE_RELATION)
				continue;
			name = get_attname(rte->relid, var->varattno, true);
			n = name ? strlen(name) : 0;
			keylike = name && (strcmp(name, "id") == 0 ||
							   (n > 3 && strcmp(name + n - 3, "_id") == 0));

			/*
			 * The first filter, unless a later one is a key: an STI lookup
			 * is "type = $1 AND id = $2", and the row is found by its id.
			 */
			if (s->filter_rel == InvalidOid || (keylike && !s->filter_keylike))
			{
				s->filter_rel = rte->relid;
				s->filter_att = var->varattno;
				s->filter_keylike = keylike;
			}
			if (keylike)
				return;
		}
	}
}

static bool
collect_quals(Node *node, stmtShape *s)
{
	if (node == NULL || s->filter_keylike)
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
	/* the table of the first column it returns ("tags".* of a join) */
	foreach(lc, s->query->targetList)
	{
		TargetEntry *te = lfirst(lc);
		Var		   *v = (Var *) strip_relabel((Node *) te->expr);

		if (te->resjunk || v == NULL || !IsA(v, Var) || v->varlevelsup != 0)
			continue;
		if (rt_fetch(v->varno, s->query->rtable)->rtekind == RTE_RELATION)
			s->out_rel = rt_fetch(v->varno, s->query->rtable)->relid;
		break;
	}
}

/*---- the catalog ----*/

/* Foreign keys of "relid" (a copy, the relcache's list may go away). */
static List *
fkeys_of(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *l = copyObject(RelationGetFKeyList(rel));

	table_close(rel, AccessShareLock);
	return l;
}

/* The first column of the primary key of "relid", or 0. */
static AttrNumber
pkey_column(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Bitmapset  *pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	int			m = bms_next_member(pk, -1);

	table_close(rel, AccessShareLock);
	if (m < 0)
		return InvalidAttrNumber;
	return m + FirstLowInvalidHeapAttributeNumber;
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

/* The key a column "x_id" refers to: the primary key, else a column "id". */
static AttrNumber
key_column(Oid relid)
{
	AttrNumber	att = pkey_column(relid);

	if (att == InvalidAttrNumber)
		att = get_attnum(relid, "id");
	return att;
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

/*---- names ----*/

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

/* English words whose plural adds no "s" (Rails' irregular inflections). */
static const char *const irregular[][2] = {
	{"person", "people"}, {"man", "men"}, {"woman", "women"},
	{"child", "children"}, {"mouse", "mice"}, {"goose", "geese"},
	{"tooth", "teeth"}, {"foot", "feet"}, {"ox", "oxen"}
};

static char *
plural(const char *s)
{
	int			n = strlen(s);
	int			i;

	for (i = 0; i < lengthof(irregular); i++)
	{
		int			l = strlen(irregular[i][0]);

		/* "person", "sales_person" */
		if (n >= l && strcmp(s + n - l, irregular[i][0]) == 0 &&
			(n == l || s[n - l - 1] == '_'))
			return psprintf("%.*s%s", n - l, s, irregular[i][1]);
	}

	if (n > 0 && s[n - 1] == 's')
		return pstrdup(s);
	if (n > 1 && s[n - 1] == 'y' && strchr("aeiou", s[n - 2]) == NULL)
		return psprintf("%.*sies", n - 1, s);
	return psprintf("%ss", s);
}

/* English singular, as Rails' inflector does for the common cases. */
static char *
singular(const char *s)
{
	int			n = strlen(s);
	int			i;

	for (i = 0; i < lengthof(irregular); i++)
	{
		int			l = strlen(irregular[i][1]);

		if (n >= l && strcmp(s + n - l, irregular[i][1]) == 0 &&
			(n == l || s[n - l - 1] == '_'))
			return psprintf("%.*s%s", n - l, s, irregular[i][0]);
	}

	if (n > 3 && strcmp(s + n - 3, "ies") == 0)
		return psprintf("%.*sy", n - 3, s);
	if (n > 4 && (strcmp(s + n - 4, "sses") == 0 || strcmp(s + n - 4, "ches") == 0 ||
				  strcmp(s + n - 4, "shes") == 0))
		return pnstrdup(s, n - 2);
	if (n > 3 && strcmp(s + n - 3, "xes") == 0)
		return pnstrdup(s, n - 2);
	if (n > 1 && s[n - 1] == 's' && s[n - 2] != 's' && s[n - 2] != 'u')
		return pnstrdup(s, n - 1);
	return pstrdup(s);
}

/* Class name of a model: "order_item" -> "OrderItem". */
static char *
camel(const char *s)
{
	StringInfoData b;
	bool		up = true;

	initStringInfo(&b);
	for (; *s; s++)
	{
		if (*s == '_')
		{
			up = true;
			continue;
		}
		appendStringInfoChar(&b, up ? pg_toupper((unsigned char) *s) : *s);
		up = false;
	}
	return b.data;
}

/* The class of a table's rows in an ORM: "blog_post", "posts" -> "Post". */
static char *
class_name(Oid relid, Oid other)
{
	return camel(singular(model_name(get_rel_name(relid),
									 other ? get_rel_name(other) : NULL)));
}

/*
 * col_names_table
 *		Does the column name "<stem>_id" name the table "target" by the Rails
 *		and Django conventions: the stem is the table's name or its model
 *		part ("<app>_<model>"), singular or as it is?
 */
static bool
col_names_table(const char *col, Oid target)
{
	int			n = strlen(col);
	char	   *stem;
	char	   *t;
	char	   *m;

	if (n <= 3 || strcmp(col + n - 3, "_id") != 0)
		return false;
	t = get_rel_name(target);
	if (t == NULL)
		return false;
	stem = pnstrdup(col, n - 3);
	m = model_name(t, NULL);
	return pg_strcasecmp(stem, t) == 0 || pg_strcasecmp(stem, singular(t)) == 0 ||
		pg_strcasecmp(stem, m) == 0 || pg_strcasecmp(stem, singular(m)) == 0;
}

/*
 * refers_to
 *		Does column att of relid refer to target?  A single-column foreign key
 *		(to its key column *tatt), else the naming convention (then *inferred;
 *		*tatt is target's primary key, or its column "id").
 */
static bool
refers_to(Oid relid, AttrNumber att, Oid target, AttrNumber *tatt,
		  bool *inferred)
{
	ForeignKeyCacheInfo *fk = fkey_from(relid, att, target);
	char	   *name;

	*inferred = false;
	if (fk)
	{
		*tatt = fk->confkey[0];
		return true;
	}
	name = get_attname(relid, att, true);
	if (name == NULL || !col_names_table(name, target))
		return false;
	*tatt = key_column(target);
	if (*tatt == InvalidAttrNumber)
		return false;
	*inferred = true;
	return true;
}

/*
 * table_for_stem
 *		The table a column "<stem>_id" names by the Rails and Django
 *		conventions, in the schema of "near" (a table of the same app): the
 *		stem, its plural, with the Django app prefix of "near"; InvalidOid if
 *		none exists.
 */
static Oid
table_for_stem(const char *stem, Oid near)
{
	Oid			nsp = get_rel_namespace(near);
	char	   *nname = get_rel_name(near);
	const char *u = nname ? strchr(nname, '_') : NULL;
	char	   *cands[4];
	int			i;

	cands[0] = pstrdup(stem);
	cands[1] = plural(stem);
	cands[2] = u ? psprintf("%.*s%s", (int) (u - nname + 1), nname, stem) : NULL;
	cands[3] = u ? psprintf("%.*s%s", (int) (u - nname + 1), nname, plural(stem)) : NULL;
	for (i = 0; i < 4; i++)
	{
		Oid			relid;

		if (cands[i] == NULL || strlen(cands[i]) >= NAMEDATALEN)
			continue;
		relid = get_relname_relid(cands[i], nsp);
		if (OidIsValid(relid) && get_rel_relkind(relid) != RELKIND_INDEX)
			return relid;
	}
	return InvalidOid;
}

/*
 * referenced_table
 *		The table column att of relid refers to: its foreign key's, else the
 *		one its name names ("category_id": "categories").  InvalidOid if none.
 */
static Oid
referenced_table(Oid relid, AttrNumber att)
{
	ForeignKeyCacheInfo *fk = fkey_from(relid, att, InvalidOid);
	char	   *name;
	int			n;

	if (fk)
		return fk->confrelid;
	name = get_attname(relid, att, true);
	n = name ? strlen(name) : 0;
	if (n <= 3 || strcmp(name + n - 3, "_id") != 0)
		return InvalidOid;
	return table_for_stem(pnstrdup(name, n - 3), relid);
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

/*---- one relation ----*/

/* The fix of one N+1 child against its parent, before it is merged. */
typedef struct relFix
{
	bool		found;
	bool		inferred;
	char	   *sql;
	char	   *django_select;
	char	   *django_prefetch;
	char	   *django_extra;
	char	   *rails;
	char	   *rails_extra;
	char	   *sqla;
	char	   *sqla_extra;
} relFix;

/*
 * forward_column
 *		A column of prel that refers to the child's filter column (crel.catt,
 *		by a foreign key, or by name when catt is crel's key); 0 if none.
 */
static AttrNumber
forward_column(Oid prel, Oid crel, AttrNumber catt, bool guess,
			   bool *inferred)
{
	ListCell   *lc;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	found = InvalidAttrNumber;
	int			i;

	*inferred = false;
	foreach(lc, fkeys_of(prel))
	{
		ForeignKeyCacheInfo *fk = lfirst(lc);

		if (fk->nkeys == 1 && fk->confrelid == crel && fk->confkey[0] == catt)
			return fk->conkey[0];
	}
	if (catt != key_column(crel))
		return InvalidAttrNumber;
	rel = table_open(prel, AccessShareLock);
	desc = RelationGetDescr(rel);
	for (i = 0; i < desc->natts && found == InvalidAttrNumber; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && col_names_table(NameStr(a->attname), crel) &&
			fkey_from(prel, a->attnum, InvalidOid) == NULL)
			found = a->attnum;
	}

	/*
	 * No column names crel.  A polymorphic association ("<x>_id" with
	 * "<x>_type", Rails' belongs_to polymorphic) or an STI one ("writer_id"
	 * for the table of the Writer class's base) names no table: when the
	 * parent has exactly one such column that names no table, it is the one
	 * (a guess: only once no table of the parent names crel).
	 */
	if (found == InvalidAttrNumber && guess)
	{
		AttrNumber	poly = InvalidAttrNumber;
		AttrNumber	lone = InvalidAttrNumber;
		int			npoly = 0;
		int			nlone = 0;

		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);
			char	   *name = NameStr(a->attname);
			int			n = strlen(name);
			char	   *stem;

			if (a->attisdropped || n <= 3 || strcmp(name + n - 3, "_id") != 0 ||
				fkey_from(prel, a->attnum, InvalidOid) != NULL)
				continue;
			stem = pnstrdup(name, n - 3);
			if (OidIsValid(table_for_stem(stem, prel)))
				continue;
			if (get_attnum(prel, psprintf("%s_type", stem)) != InvalidAttrNumber)
			{
				poly = a->attnum;
				npoly++;
			}
			lone = a->attnum;
			nlone++;
		}
		if (npoly == 1)
			found = poly;
		else if (npoly == 0 && nlone == 1)
			found = lone;
	}
	table_close(rel, AccessShareLock);
	*inferred = (found != InvalidAttrNumber);
	return found;
}

static bool relate(List *prels, stmtShape *child, relFix *r);

/*
 * selects_more
 *		Whether the child statement selects a column of "crel" that the
 *		parent query does not (a deferred field), rather than a row the
 *		parent has in full.
 */
static bool
selects_more(stmtShape *parent, stmtShape *child, Oid crel)
{
	Bitmapset  *have = NULL;
	ListCell   *lc;
	bool		more = false;

	foreach(lc, parent->query->targetList)
	{
		TargetEntry *te = lfirst(lc);
		Var		   *v = (Var *) strip_relabel((Node *) te->expr);

		if (v && IsA(v, Var) && v->varlevelsup == 0 && v->varattno > 0 &&
			rt_fetch(v->varno, parent->query->rtable)->rtekind == RTE_RELATION &&
			rt_fetch(v->varno, parent->query->rtable)->relid == crel)
			have = bms_add_member(have, v->varattno);
	}
	foreach(lc, child->query->targetList)
	{
		TargetEntry *te = lfirst(lc);
		Var		   *v = (Var *) strip_relabel((Node *) te->expr);

		if (!te->resjunk && v && IsA(v, Var) && v->varattno > 0 &&
			!bms_is_member(v->varattno, have))
			more = true;
	}
	bms_free(have);
	return more;
}

/*
 * derive_relation
 *		The fix of one child statement against the parent's tables.  May
 *		ERROR (catalog access): the caller runs guarded.
 */
static void
derive_relation(stmtShape *parent, stmtShape *child, relFix *r)
{
	Oid			crel = child->filter_rel;
	AttrNumber	catt = child->filter_att;
	ListCell   *lc;

	memset(r, 0, sizeof(*r));
	if (!OidIsValid(crel))
		return;

	/*
	 * Deferred field loaded per row: columns of a parent table that the
	 * parent query did not select, by primary key (a lookup of columns the
	 * parent already has is a relation to the same table).
	 */
	if (list_member_oid(parent->relids, crel) &&
		list_length(child->relids) == 1 && !child->has_aggs &&
		is_pkey_column(crel, catt) && selects_more(parent, child, crel))
	{
		StringInfoData cols;
		bool		first = true;

		initStringInfo(&cols);
		foreach(lc, child->query->targetList)
		{
			TargetEntry *te = lfirst(lc);
			Var		   *v = (Var *) strip_relabel((Node *) te->expr);

			if (te->resjunk || !IsA(v, Var) || v->varattno == catt)
				continue;
			appendStringInfo(&cols, "%s'%s'", first ? "" : ", ",
							 get_attname(crel, v->varattno, false));
			first = false;
		}
		r->found = true;
		r->sql = psprintf("deferred field loaded per row: %s of %s is fetched by primary key once per row: select it in the parent query",
						  cols.len ? cols.data : "a column", qi(crel));
		r->django_extra = psprintf("remove %s from .only()/.defer()",
								   cols.len ? cols.data : "the field");
		r->rails_extra = pstrdup("add it to .select(...)");
		r->sqla_extra = psprintf("undefer %s, or drop it from load_only()",
								 cols.len ? cols.data : "the column");
		return;
	}

	if (relate(parent->relids, child, r))
		return;

	/*
	 * The parent query is not the loop's (the last multi-row SELECT before
	 * the loop may be a preload of another relation): the table the filter
	 * column refers to is the loop's parent model.
	 */
	{
		Oid			ref = referenced_table(crel, catt);

		if (OidIsValid(ref) && ref != crel && !list_member_oid(parent->relids, ref))
			(void) relate(list_make1_oid(ref), child, r);
	}
}

/*
 * relate
 *		The relation the child loads for each row of one of the tables prels:
 *		an aggregate per row, a forward relation, a many-to-many or
 *		through-relation, a reverse relation.  Fills r; false if none.
 */
static bool
relate(List *prels, stmtShape *child, relFix *r)
{
	Oid			crel = child->filter_rel;
	AttrNumber	catt = child->filter_att;
	ListCell   *lc;
	int			pass;

	/* aggregate per row */
	if (child->has_aggs)
	{
		foreach(lc, prels)
		{
			Oid			prel = lfirst_oid(lc);
			AttrNumber	patt;
			bool		inferred;
			char	   *pm,
					   *cm;

			if (prel == crel || !refers_to(crel, catt, prel, &patt, &inferred))
				continue;
			pm = model_name(get_rel_name(prel), get_rel_name(crel));
			cm = model_name(get_rel_name(crel), get_rel_name(prel));
			r->found = true;
			r->inferred = inferred;
			r->sql = psprintf("aggregate per row: LEFT JOIN (SELECT %s, count(*) AS n FROM %s GROUP BY %s) c ON c.%s = %s.%s in the parent query",
							  qa(crel, catt), qi(crel), qa(crel, catt),
							  qa(crel, catt), qi(prel), qa(prel, patt));
			r->django_extra = psprintf(".annotate(%s_count=Count('%s')) on the %s queryset",
									   singular(cm), singular(cm), singular(pm));
			r->rails_extra = psprintf("%s.left_joins(:%s).group(:id).count, or .includes(:%s) and .size instead of .count, or a counter_cache",
									  class_name(prel, crel), plural(singular(cm)),
									  plural(singular(cm)));
			r->sqla_extra = psprintf("a subquery of func.count() grouped by %s.%s, outer-joined to the %s query",
									 qi(crel), qa(crel, catt), class_name(prel, crel));
			return true;
		}
	}

	/*
	 * forward: a parent table refers to the child's filter column; by a
	 * foreign key or by name first, in any parent table, then by a guess
	 */
	for (pass = 0; pass < 2; pass++)
	{
		foreach(lc, prels)
		{
			Oid			prel = lfirst_oid(lc);
			bool		inferred;
			AttrNumber	patt;
			char	   *f;

			if (prel == crel)
				continue;
			patt = forward_column(prel, crel, catt, pass == 1, &inferred);
			if (patt == InvalidAttrNumber)
				continue;
			f = field_name(get_attname(prel, patt, false));
			r->found = true;
			r->inferred = inferred;
			r->sql = psprintf("JOIN %s ON %s.%s = %s.%s", qi(crel), qi(crel),
							  qa(crel, catt), qi(prel), qa(prel, patt));
			r->django_select = psprintf("'%s'", f);
			r->rails = psprintf(":%s", f);
			r->sqla = psprintf("joinedload(%s.%s)", class_name(prel, crel), f);
			return true;
		}
	}

	/*
	 * Many-to-many through a link table (crel), or a relation through
	 * another one (has_many/has_one :through): the link table refers to a
	 * parent table, and another table of the child refers to the link or is
	 * referred to by it.  The relation is named after the table the child
	 * returns rows of.
	 */
	if (list_length(child->relids) >= 2)
	{
		foreach(lc, prels)
		{
			Oid			prel = lfirst_oid(lc);
			AttrNumber	patt;
			bool		inferred;
			ListCell   *lc2;

			if (prel == crel || !refers_to(crel, catt, prel, &patt, &inferred))
				continue;
			foreach(lc2, child->relids)
			{
				Oid			orel = lfirst_oid(lc2);
				Oid			named;
				AttrNumber	oatt = InvalidAttrNumber;
				AttrNumber	okey = InvalidAttrNumber;
				bool		oinf = false;
				bool		backwards = false;
				Relation	rel;
				TupleDesc	desc;
				char	   *link,
						   *pname,
						   *f,
						   *other;
				int			i,
							pl;

				if (orel == crel || orel == prel)
					continue;
				/* the link table's other column, to orel */
				rel = table_open(crel, AccessShareLock);
				desc = RelationGetDescr(rel);
				for (i = 0; i < desc->natts && oatt == InvalidAttrNumber; i++)
				{
					Form_pg_attribute a = TupleDescAttr(desc, i);

					if (!a->attisdropped && a->attnum != catt &&
						refers_to(crel, a->attnum, orel, &okey, &oinf))
						oatt = a->attnum;
				}
				table_close(rel, AccessShareLock);
				/* or a column of orel, to the link table (through) */
				if (oatt == InvalidAttrNumber)
				{
					rel = table_open(orel, AccessShareLock);
					desc = RelationGetDescr(rel);
					for (i = 0; i < desc->natts && oatt == InvalidAttrNumber; i++)
					{
						Form_pg_attribute a = TupleDescAttr(desc, i);

						if (!a->attisdropped &&
							refers_to(orel, a->attnum, crel, &okey, &oinf))
						{
							oatt = a->attnum;
							backwards = true;
						}
					}
					table_close(rel, AccessShareLock);
				}
				if (oatt == InvalidAttrNumber)
					continue;
				named = (OidIsValid(child->out_rel) && child->out_rel != crel &&
						 child->out_rel != prel) ? child->out_rel : orel;
				/* Django names the link table "<parent table>_<field>" */
				link = get_rel_name(crel);
				pname = get_rel_name(prel);
				pl = strlen(pname);
				other = singular(model_name(get_rel_name(named), pname));
				/* has_one :through: one row (LIMIT), through a has_many */
				if (!backwards || child->query->limitCount == NULL)
					other = plural(other);
				if (strncmp(link, pname, pl) == 0 && link[pl] == '_' &&
					named == orel && !backwards)
					f = pstrdup(link + pl + 1);
				else
					f = other;
				r->found = true;
				r->inferred = inferred || oinf;
				if (backwards)
					r->sql = psprintf("JOIN %s ON %s.%s = %s.%s JOIN %s ON %s.%s = %s.%s",
									  qi(crel), qi(crel), qa(crel, catt),
									  qi(prel), qa(prel, patt),
									  qi(orel), qi(orel), qa(orel, oatt),
									  qi(crel), qa(crel, okey));
				else
					r->sql = psprintf("JOIN %s ON %s.%s = %s.%s JOIN %s ON %s.%s = %s.%s",
									  qi(crel), qi(crel), qa(crel, catt),
									  qi(prel), qa(prel, patt),
									  qi(orel), qi(orel), qa(orel, okey),
									  qi(crel), qa(crel, oatt));
				r->django_prefetch = psprintf("'%s'", f);
				r->rails = psprintf(":%s", other);
				r->sqla = psprintf("selectinload(%s.%s)", class_name(prel, crel),
								   other);
				return true;
			}
		}
	}

	/* reverse: the child's filter column refers to a parent table */
	foreach(lc, prels)
	{
		Oid			prel = lfirst_oid(lc);
		AttrNumber	patt;
		bool		inferred;
		char	   *cm;

		if (prel == crel || !refers_to(crel, catt, prel, &patt, &inferred))
			continue;
		cm = model_name(get_rel_name(crel), get_rel_name(prel));
		r->found = true;
		r->inferred = inferred;
		r->sql = psprintf("JOIN %s ON %s.%s = %s.%s, or one query with %s = ANY(...) for all parents",
						  qi(crel), qi(crel), qa(crel, catt),
						  qi(prel), qa(prel, patt), qa(crel, catt));
		r->django_prefetch = psprintf("'%s_set'", singular(cm));
		r->rails = psprintf(":%s", plural(singular(cm)));
		r->sqla = psprintf("selectinload(%s.%s)", class_name(prel, crel),
						   plural(singular(cm)));
		return true;
	}
	return false;
}

/*---- parts ----*/

/* Merge one relation's fix into a finding's. */
static void
fix_add(pfgFix *fix, const relFix *r)
{
	if (!r->found)
		return;
	fix->found = true;
	fix->inferred |= r->inferred;
	fix->nrel++;
#define ADD(field, v, sep) \
	if (v) pfg_fix_items_append(fix->field, sizeof(fix->field), v, sep)
	ADD(sql, r->sql, "; ");
	ADD(django_select, r->django_select, ", ");
	ADD(django_prefetch, r->django_prefetch, ", ");
	ADD(django_extra, r->django_extra, "; ");
	ADD(rails, r->rails, ", ");
	ADD(rails_extra, r->rails_extra, "; ");
	ADD(sqla, r->sqla, ", ");
	ADD(sqla_extra, r->sqla_extra, "; ");
#undef ADD
}

/*---- deriving a fix ----*/

typedef struct fixArgs
{
	const char *parent_query;
	const char *const *queries;
	int			nqueries;
	pfgFix	   *fix;
} fixArgs;

/*
 * derive_fix
 *		The body of pfg_fix_derive, run guarded.  May ERROR.
 */
static void
derive_fix(void *arg)
{
	fixArgs    *a = (fixArgs *) arg;
	stmtShape	parent;
	stmtShape  *children = palloc0(sizeof(stmtShape) * a->nqueries);
	bool		any = false;
	int			i;

	/* the children first: without a repeated filter there is nothing to do */
	for (i = 0; i < a->nqueries; i++)
	{
		shape_of(a->queries[i], &children[i]);
		any |= OidIsValid(children[i].filter_rel);
		if (i == 0 && OidIsValid(children[i].filter_rel))
		{
			char	   *t = get_rel_name(children[i].filter_rel);
			char	   *c = get_attname(children[i].filter_rel,
										children[i].filter_att, true);

			if (t)
				strlcpy(a->fix->table_name, t, NAMEDATALEN);
			if (c)
				strlcpy(a->fix->column_name, c, NAMEDATALEN);
		}
	}
	if (!any)
		return;
	shape_of(a->parent_query, &parent);
	for (i = 0; i < a->nqueries; i++)
	{
		relFix		r;

		derive_relation(&parent, &children[i], &r);
		fix_add(a->fix, &r);
	}
}

/*
 * pfg_fix_derive
 *		See the file header: the fix of an N+1 (nqueries = 1) or of the
 *		members of a repeating sequence, against their parent, in the
 *		current database.  Fills *fix (zeroed first) and returns the
 *		suggestion for "framework".  Errors in the analysis are caught (a
 *		query cancel is re-thrown): the fix is then the generic one.  This is
 *		the pfg_fix_fn that perfguard.c registers with the scope.
 */
char *
pfg_fix_derive(const char *parent_query, const char *const *queries,
			   int nqueries, int framework, pfgFix *fix)
{
	fixArgs		a;

	memset(fix, 0, sizeof(pfgFix));
	a.parent_query = parent_query;
	a.queries = queries;
	a.nqueries = nqueries;
	a.fix = fix;
	if (nqueries > 0 && queries[0] != NULL &&
		!pfg_report_guarded(derive_fix, &a, CurrentMemoryContext))
		memset(fix, 0, sizeof(pfgFix));
	return pfg_fix_compose(framework, fix);
}

/*
 * pfg_n_plus_one_fix
 *		The fix of one N+1 child, for every framework: table_name and
 *		column_name of the repeated filter (when found) and the suggestion
 *		(always; the generic one when nothing more precise is known).
 */
void
pfg_n_plus_one_fix(const char *parent_query, const char *query,
				   char **table_name, char **column_name, char **suggestion)
{
	pfgFix		fix;

	*suggestion = pfg_fix_derive(parent_query, &query, 1, PFG_FW_NONE, &fix);
	*table_name = fix.table_name[0] ? pstrdup(fix.table_name) : NULL;
	*column_name = fix.column_name[0] ? pstrdup(fix.column_name) : NULL;
}

/*---- SQL functions ----*/

/*
 * perfguard_n_plus_one_fix
 *		perfguard._n_plus_one_fix(parent text, query text): (table_name,
 *		column_name, suggestion) for an N+1 child query and its parent,
 *		derived from the catalog of the current database.
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

/*
 * perfguard_fix_parts
 *		perfguard._fix_parts(parent text, queries text[]): the parts of the
 *		fix of one N+1 (one query) or of a repeating sequence, derived now
 *		from the catalog of the current database.  The views use it for a
 *		finding that has no stored fix (recorded before this version, or
 *		whose recording backend could not derive it).
 */
Datum
perfguard_fix_parts(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[12];
	bool		nulls[12];
	char	   *parent = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *ql = pfg_fix_text_array_arg(fcinfo, 1);
	const char **queries;
	pfgFix		fix;
	ListCell   *lc;
	int			n = 0;
	int			j = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	queries = palloc0(sizeof(char *) * (list_length(ql) + 1));
	foreach(lc, ql)
		queries[n++] = lfirst(lc);
	(void) pfg_fix_derive(parent, queries, n, PFG_FW_NONE, &fix);

	memset(nulls, 0, sizeof(nulls));
	values[j++] = BoolGetDatum(fix.found);
	values[j++] = BoolGetDatum(fix.inferred);
#define TXT(f) \
	do { \
		if (fix.f[0]) \
			values[j++] = CStringGetTextDatum(fix.f); \
		else \
			nulls[j++] = true; \
	} while (0)
	TXT(table_name);
	TXT(column_name);
	TXT(sql);
	TXT(django_select);
	TXT(django_prefetch);
	TXT(django_extra);
	TXT(rails);
	TXT(rails_extra);
	TXT(sqla);
	TXT(sqla_extra);
#undef TXT
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
