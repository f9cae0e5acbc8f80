/*-------------------------------------------------------------------------
 *
 * fix_text.c
 *		The suggestion text of a fix: the parts of an N+1's fix (store.h's
 *		pfgFix) merged with those of the other relations of its loop, then
 *		written as one line per framework.
 *
 * The parts are lists ("'author', 'tags'") that merge item by item, every
 * relation once:
 *	JOIN ... / Django: .select_related('author').prefetch_related('tags',
 *	'comment_set') / Rails: .includes(:author, :tags, :comments) /
 *	SQLAlchemy: .options(joinedload(Post.author), selectinload(Post.tags))
 * Only the tagged framework's line is written when the requests were tagged
 * with one.  Pure string work: no catalog, no shared memory; nplusone_fix.c
 * derives the parts, findings.c merges those of one loop.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/fix_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "fix_text.h"

PG_FUNCTION_INFO_V1(perfguard_fix_suggestion);

/*
 * pfg_fix_items_append
 *		Append the items of "part" (a list joined by "sep") to buf (of
 *		"size" bytes, joined by sep too), skipping those already there and
 *		those that would not fit whole.
 */
void
pfg_fix_items_append(char *buf, int size, const char *part, const char *sep)
{
	int			seplen = strlen(sep);
	const char *p = part;

	while (p && *p)
	{
		const char *e = strstr(p, sep);
		int			n = e ? e - p : (int) strlen(p);
		int			used = strlen(buf);
		const char *q = buf;
		bool		dup = false;

		while (n > 0 && *q)
		{
			const char *qe = strstr(q, sep);
			int			qn = qe ? qe - q : (int) strlen(q);

			if (qn == n && strncmp(q, p, n) == 0)
			{
				dup = true;
				break;
			}
			q = qe ? qe + seplen : q + qn;
		}
		if (n > 0 && !dup && used + (used ? seplen : 0) + n < size)
		{
			if (used)
				strcat(buf, sep);
			strncat(buf, p, n);
		}
		p = e ? e + seplen : NULL;
	}
}


/*---- the suggestion text ----*/

/* The parts of several fixes, as the composer takes them. */
typedef struct fixParts
{
	char		sql[PFG_FIX_SQL_LEN * 2];
	char		django_select[PFG_FIX_PART_LEN * 2];
	char		django_prefetch[PFG_FIX_PART_LEN * 2];
	char		django_extra[PFG_FIX_PART_LEN * 2];
	char		rails[PFG_FIX_PART_LEN * 2];
	char		rails_extra[PFG_FIX_PART_LEN * 2];
	char		sqla[PFG_FIX_PART_LEN * 2];
	char		sqla_extra[PFG_FIX_PART_LEN * 2];
} fixParts;

/*
 * compose
 *		The suggestion from merged parts: the SQL, then one line per framework
 *		(only "framework"'s when the requests were tagged with one):
 *		"JOIN ... / Django: .select_related('a').prefetch_related('b') /
 *		Rails: .includes(:a, :b) / SQLAlchemy: .options(joinedload(P.a),
 *		selectinload(P.b))".  Without parts, the generic fix (naming the
 *		repeated filter column when known).
 */
static char *
compose(int framework, bool inferred, const char *column, const fixParts *p)
{
	StringInfoData b;
	bool		any = p->sql[0] || p->django_select[0] || p->django_prefetch[0] ||
		p->django_extra[0] || p->rails[0] || p->rails_extra[0] || p->sqla[0] ||
		p->sqla_extra[0];

	initStringInfo(&b);
	if (!any)
	{
		if (column && column[0])
			appendStringInfo(&b, "load all rows at once: SQL: one query with %s = ANY($1) or a JOIN with the parent query",
							 quote_identifier(column));
		else
			appendStringInfoString(&b, "load the related rows in the parent query: SQL: a JOIN or one query with = ANY($1)");
		if (framework == PFG_FW_NONE || framework == PFG_FW_DJANGO)
			appendStringInfoString(&b, " / Django: .select_related()/.prefetch_related()");
		if (framework == PFG_FW_NONE || framework == PFG_FW_RAILS)
			appendStringInfoString(&b, " / Rails: .includes()");
		if (framework == PFG_FW_NONE || framework == PFG_FW_SQLALCHEMY)
			appendStringInfoString(&b, " / SQLAlchemy: .options(joinedload()/selectinload())");
		return b.data;
	}
	appendStringInfoString(&b, p->sql);
	if ((framework == PFG_FW_NONE || framework == PFG_FW_DJANGO) &&
		(p->django_select[0] || p->django_prefetch[0] || p->django_extra[0]))
	{
		appendStringInfo(&b, "%sDjango: ", b.len ? " / " : "");
		if (p->django_select[0])
			appendStringInfo(&b, ".select_related(%s)", p->django_select);
		if (p->django_prefetch[0])
			appendStringInfo(&b, ".prefetch_related(%s)", p->django_prefetch);
		if (p->django_extra[0])
			appendStringInfo(&b, "%s%s",
							 p->django_select[0] || p->django_prefetch[0] ? "; " : "",
							 p->django_extra);
	}
	if ((framework == PFG_FW_NONE || framework == PFG_FW_RAILS) &&
		(p->rails[0] || p->rails_extra[0]))
	{
		appendStringInfo(&b, "%sRails: ", b.len ? " / " : "");
		if (p->rails[0])
			appendStringInfo(&b, ".includes(%s)", p->rails);
		if (p->rails_extra[0])
			appendStringInfo(&b, "%s%s", p->rails[0] ? "; " : "", p->rails_extra);
	}
	if ((framework == PFG_FW_NONE || framework == PFG_FW_SQLALCHEMY) &&
		(p->sqla[0] || p->sqla_extra[0]))
	{
		appendStringInfo(&b, "%sSQLAlchemy: ", b.len ? " / " : "");
		if (p->sqla[0])
			appendStringInfo(&b, ".options(%s)", p->sqla);
		if (p->sqla_extra[0])
			appendStringInfo(&b, "%s%s", p->sqla[0] ? "; " : "", p->sqla_extra);
	}
	if (inferred)
		appendStringInfoString(&b, " (relations inferred from column names: no foreign key links these tables)");
	return b.data;
}

/* Add one fix's parts to merged parts. */
static void
parts_add(fixParts *p, const pfgFix *f)
{
#define ADD(field, sep) pfg_fix_items_append(p->field, sizeof(p->field), f->field, sep)
	ADD(sql, "; ");
	ADD(django_select, ", ");
	ADD(django_prefetch, ", ");
	ADD(django_extra, "; ");
	ADD(rails, ", ");
	ADD(rails_extra, "; ");
	ADD(sqla, ", ");
	ADD(sqla_extra, "; ");
#undef ADD
}

/*
 * pfg_fix_merge_start, pfg_fix_merge_add, pfg_fix_merge_compose
 *		Merge the fixes of the findings of one loop into one suggestion (the
 *		cards of perfguard.findings): every relation once, one call chain per
 *		framework.
 */
pfgFixMerge *
pfg_fix_merge_start(void)
{
	return (pfgFixMerge *) palloc0(sizeof(fixParts));
}

void
pfg_fix_merge_add(pfgFixMerge *m, const pfgFix *fix)
{
	parts_add((fixParts *) m, fix);
}

char *
pfg_fix_merge_compose(pfgFixMerge *m, int framework, bool inferred,
					  const char *column)
{
	return compose(framework, inferred, column, (fixParts *) m);
}

/*
 * pfg_fix_compose
 *		The suggestion text of one fix, for "framework" (pfgFramework).
 */
char *
pfg_fix_compose(int framework, const pfgFix *fix)
{
	fixParts   *p = palloc0(sizeof(fixParts));

	parts_add(p, fix);
	return compose(framework, fix->inferred, fix->column_name, p);
}

/*---- SQL functions ----*/

/*
 * pfg_fix_text_array_arg
 *		A text[] argument as a list of C strings (NULL elements skipped).
 */
List *
pfg_fix_text_array_arg(FunctionCallInfo fcinfo, int argno)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	int			i;
	List	   *l = NIL;

	if (PG_ARGISNULL(argno))
		return NIL;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("fix parts must be one-dimensional arrays")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (i = 0; i < n; i++)
		if (!enulls[i])
			l = lappend(l, text_to_cstring(DatumGetTextPP(elems[i])));
	return l;
}

/* The pfgFramework of a name ("django", "rails", "sqlalchemy"), or NONE. */
static int
framework_of(const char *name)
{
	if (name == NULL)
		return PFG_FW_NONE;
	if (strcmp(name, "django") == 0)
		return PFG_FW_DJANGO;
	if (strcmp(name, "rails") == 0)
		return PFG_FW_RAILS;
	if (strcmp(name, "sqlalchemy") == 0)
		return PFG_FW_SQLALCHEMY;
	return PFG_FW_NONE;
}

/*
 * perfguard_fix_suggestion
 *		perfguard._fix_suggestion(framework, inferred, column_name, sql[],
 *		django_select[], django_prefetch[], django_extra[], rails[],
 *		rails_extra[], sqla[], sqla_extra[]): the one suggestion of the
 *		merged parts of several fixes (the N+1s of one loop), for one
 *		framework or, when framework is NULL, all three.  Pure: no catalog.
 */
Datum
perfguard_fix_suggestion(PG_FUNCTION_ARGS)
{
	int			framework = framework_of(PG_ARGISNULL(0) ? NULL :
										 text_to_cstring(PG_GETARG_TEXT_PP(0)));
	bool		inferred = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	char	   *column = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	fixParts   *p = palloc0(sizeof(fixParts));
	char	   *fields[8];
	int			sizes[8];
	const char *seps[8] = {"; ", ", ", ", ", "; ", ", ", "; ", ", ", "; "};
	int			i;

	fields[0] = p->sql;
	fields[1] = p->django_select;
	fields[2] = p->django_prefetch;
	fields[3] = p->django_extra;
	fields[4] = p->rails;
	fields[5] = p->rails_extra;
	fields[6] = p->sqla;
	fields[7] = p->sqla_extra;
	sizes[0] = sizeof(p->sql);
	for (i = 1; i < 8; i++)
		sizes[i] = sizeof(p->django_select);
	for (i = 0; i < 8; i++)
	{
		ListCell   *lc;

		foreach(lc, pfg_fix_text_array_arg(fcinfo, 3 + i))
			pfg_fix_items_append(fields[i], sizes[i], lfirst(lc), seps[i]);
	}
	PG_RETURN_TEXT_P(cstring_to_text(compose(framework, inferred, column, p)));
}
