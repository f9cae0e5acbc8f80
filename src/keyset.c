/*-------------------------------------------------------------------------
 *
 * keyset.c
 *		Keyset ("seek") pagination helpers: the predicate that starts the
 *		page after a given row, one page of a relation with the cursor of
 *		the next page, the index that serves an ORDER BY, and opaque signed
 *		cursors.
 *
 * An ORDER BY is accepted only in the restricted form
 *		ident [ASC | DESC] [NULLS FIRST | NULLS LAST] [, ...]
 * where ident is a plain or a double-quoted identifier.  Everything that
 * reaches generated SQL is re-quoted here: identifiers with
 * quote_identifier(), values with quote_literal_cstr(), so neither the
 * ORDER BY nor the sort values of a cursor can inject SQL.  Values are
 * always emitted as quoted literals of unknown type, so that the parser
 * resolves them against the column's own type ('2024-01-01' becomes a
 * timestamptz next to a timestamptz column, '7' an integer next to an
 * integer one).
 *
 * The predicate for "rows after r" is the row comparison
 *		(a, b) > ('x', '1')
 * when all keys sort in the same direction and r has no NULLs: a btree on
 * (a, b) serves it as an index condition.  A row comparison never admits a
 * row with a NULL key, which is exact when NULLs sort before the values
 * (NULLS FIRST, the default for DESC) or when the column is known NOT NULL;
 * otherwise the rows with NULLs that sort after r are added as
 * "OR (a = 'x' AND b IS NULL) OR a IS NULL".  Mixed directions and NULLs in
 * r expand into the OR-chain
 *		a > 'x' OR (a = 'x' AND b < '1') OR ...
 * with IS NULL / IS NOT NULL terms according to NULLS FIRST / LAST.
 * NOT NULL is known only when a relation is given (the three-argument
 * keyset_predicate and keyset_page).
 *
 * Cursors are base64url (no padding) of
 *		version byte (1) | flags byte | payload (jsonb text) [| HMAC]
 * where flag 0x01 means the cursor carries an HMAC-SHA256 of everything
 * before it, keyed with perfguard.cursor_secret.  When the secret is set,
 * only cursors signed with it are accepted; MACs are compared in constant
 * time.
 *
 * The filter of keyset_page is SQL written by the caller and runs with the
 * caller's privileges (these functions are not SECURITY DEFINER).  It is
 * checked to be exactly one expression whose parentheses balance, so that it
 * cannot change the shape of the statement it is embedded in (no ";", no
 * UNION, no escaping its parentheses to bypass the keyset predicate), and the
 * page query runs in a read-only SPI call.  See docs/keyset.md.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/keyset.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "common/hmac.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "keyset.h"
#include "keyset_cursor.h"
#include "report.h"

PG_FUNCTION_INFO_V1(perfguard_keyset_predicate);
PG_FUNCTION_INFO_V1(perfguard_keyset_page);
PG_FUNCTION_INFO_V1(perfguard_keyset_index);
PG_FUNCTION_INFO_V1(perfguard_keyset_suggestion);

/*---- constants ----*/

#define KEYSET_MAX_PAGE_SIZE	10000

#define KEYSET_ORDER_HINT \
	"Each ORDER BY item must be a column name, optionally followed by ASC or DESC and NULLS FIRST or NULLS LAST, e.g. 'created_at DESC, id DESC'."

/*---- types ----*/

/* One item of a parsed ORDER BY. */
typedef struct keysetKey
{
	char	   *colname;		/* column name as in the catalog */
	bool		desc;			/* DESC */
	bool		nulls_first;	/* NULLs sort before the values */
	bool		notnull;		/* column known NOT NULL (needs a relation) */
	AttrNumber	attnum;			/* set by keyset_bind_relation */
} keysetKey;

/*---- static functions ----*/

static void keyset_order_error(const char *item, const char *detail) pg_attribute_noreturn();
static keysetKey *keyset_parse_order(const char *order_by, int *nkeys);
static void keyset_bind_relation(Relation rel, keysetKey *keys, int nkeys);
static Relation keyset_open_relation(Oid relid);
static char *keyset_render_value(JsonbValue *v);
static char *keyset_build_predicate(keysetKey *keys, int nkeys, Jsonb *after);
static char *keyset_compare_sql(const keysetKey *keys, int nkeys,
								const char **col, const char **lit, bool wrap);
static bool keyset_is_unique(Relation rel, keysetKey *keys, int nkeys);
static char *keyset_unique_hint(Relation rel, const char *order_by,
								keysetKey *keys, int nkeys);
static char *keyset_find_index(Relation rel, keysetKey *keys, int nkeys);
static char *keyset_index_ddl(Relation rel, keysetKey *keys, int nkeys);
static void keyset_append_key(StringInfo buf, keysetKey *key, bool explicit);
static void keyset_check_filter(const char *filter);
static const char *keyset_lex_filter(const char *filter);
static Jsonb *keyset_cursor_values(Jsonb *row, keysetKey *keys, int nkeys);

/*---- ORDER BY parsing ----*/

static inline bool
keyset_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		c >= 0x80;
}

static inline bool
keyset_ident_cont(unsigned char c)
{
	return keyset_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/*
 * Report an ORDER BY item that is not of the accepted form.  item points at
 * the start of the item; the message shows the item up to the next comma.
 */
static void
keyset_order_error(const char *item, const char *detail)
{
	const char *end = strchr(item, ',');
	int			len = end ? (int) (end - item) : (int) strlen(item);

	while (len > 0 && scanner_isspace(item[len - 1]))
		len--;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid ORDER BY item \"%.*s\"", Min(len, 200), item),
			 errdetail("%s", detail),
			 errhint(KEYSET_ORDER_HINT)));
}

/*
 * Parse an ORDER BY list into a palloc'd array of keys.
 *
 * Unquoted identifiers are down-cased as the SQL parser does; quoted ones
 * keep their case and may contain anything but a NUL ("" is a quote).
 * Anything else, including qualified names, expressions, COLLATE and
 * USING, is refused with ERRCODE_INVALID_PARAMETER_VALUE.
  *
 * Long (about 150 lines) because it is one hand-written lexer over the
 * ORDER BY: splitting its states across functions would hide the grammar.
 */
static keysetKey *
keyset_parse_order(const char *order_by, int *nkeys)
{
	const char *p = order_by;
	int			cap = 4;
	int			n = 0;
	keysetKey  *keys = palloc0(sizeof(keysetKey) * cap);

	for (;;)
	{
		const char *item;
		char	   *name;
		bool		have_dir = false;
		bool		have_nulls = false;
		int			i;

		while (scanner_isspace(*p))
			p++;
		item = p;
		if (*p == '\0' || *p == ',')
		{
			if (n == 0 && *p == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("ORDER BY must not be empty"),
						 errhint(KEYSET_ORDER_HINT)));
			keyset_order_error(item, "Expected a column name.");
		}

		if (*p == '"')
		{
			StringInfoData buf;

			initStringInfo(&buf);
			p++;
			for (;;)
			{
				if (*p == '\0')
					keyset_order_error(item, "Unterminated quoted identifier.");
				if (*p == '"')
				{
					if (p[1] == '"')
					{
						appendStringInfoChar(&buf, '"');
						p += 2;
						continue;
					}
					p++;
					break;
				}
				appendStringInfoChar(&buf, *p++);
			}
			if (buf.len == 0)
				keyset_order_error(item, "Zero-length quoted identifier.");
			if (buf.len >= NAMEDATALEN)
				keyset_order_error(item, "Identifier is too long.");
			name = buf.data;
		}
		else if (keyset_ident_start((unsigned char) *p))
		{
			const char *start = p;

			while (keyset_ident_cont((unsigned char) *p))
				p++;
			if (p - start >= NAMEDATALEN)
				keyset_order_error(item, "Identifier is too long.");
			name = downcase_truncate_identifier(start, p - start, false);
		}
		else
		{
			keyset_order_error(item, "Expected a column name.");
			name = NULL;		/* keep compiler quiet */
		}

		/* options: [ASC | DESC] [NULLS FIRST | NULLS LAST] */
		if (n == cap)
		{
			cap *= 2;
			keys = repalloc(keys, sizeof(keysetKey) * cap);
		}
		memset(&keys[n], 0, sizeof(keysetKey));
		keys[n].colname = name;

		for (;;)
		{
			const char *w;
			int			wlen;

			if (*p != '\0' && *p != ',' && !scanner_isspace(*p))
				keyset_order_error(item,
								   "Only ASC, DESC, NULLS FIRST or NULLS LAST may follow the column name.");
			while (scanner_isspace(*p))
				p++;
			if (*p == '\0' || *p == ',')
				break;
			w = p;
			while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
				p++;
			wlen = p - w;
			if (wlen == 3 && pg_strncasecmp(w, "asc", 3) == 0 &&
				!have_dir && !have_nulls)
				have_dir = true;
			else if (wlen == 4 && pg_strncasecmp(w, "desc", 4) == 0 &&
					 !have_dir && !have_nulls)
			{
				keys[n].desc = true;
				have_dir = true;
			}
			else if (wlen == 5 && pg_strncasecmp(w, "nulls", 5) == 0 &&
					 !have_nulls)
			{
				const char *w2;

				if (!scanner_isspace(*p))
					keyset_order_error(item, "NULLS must be followed by FIRST or LAST.");
				while (scanner_isspace(*p))
					p++;
				w2 = p;
				while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
					p++;
				if (p - w2 == 5 && pg_strncasecmp(w2, "first", 5) == 0)
					keys[n].nulls_first = true;
				else if (p - w2 == 4 && pg_strncasecmp(w2, "last", 4) == 0)
					keys[n].nulls_first = false;
				else
					keyset_order_error(item, "NULLS must be followed by FIRST or LAST.");
				have_nulls = true;
			}
			else
				keyset_order_error(item,
								   "Only ASC, DESC, NULLS FIRST or NULLS LAST may follow the column name.");
		}
		/* PostgreSQL's defaults: ASC NULLS LAST, DESC NULLS FIRST */
		if (!have_nulls)
			keys[n].nulls_first = keys[n].desc;

		for (i = 0; i < n; i++)
			if (strcmp(keys[i].colname, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" appears more than once in ORDER BY",
								name)));
		n++;

		if (*p == '\0')
			break;
		Assert(*p == ',');
		p++;
	}

	*nkeys = n;
	return keys;
}

/*
 * Open a relation given by OID for keyset pagination, with AccessShareLock
 * kept until the end of the transaction.  Only relations that can have
 * indexes are accepted.
 */
static Relation
keyset_open_relation(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	char		relkind;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = rel->rd_rel->relkind;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or materialized view",
						RelationGetRelationName(rel)),
				 errhint("Keyset pagination needs a unique index, which only tables and materialized views can have.")));
	return rel;
}

/*
 * Resolve the ORDER BY columns against rel: attribute numbers and NOT NULL.
 */
static void
keyset_bind_relation(Relation rel, keysetKey *keys, int nkeys)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < nkeys; i++)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), keys[i].colname);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							keys[i].colname, RelationGetRelationName(rel))));
		if (attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("system column \"%s\" cannot be used for keyset pagination",
							keys[i].colname)));
		keys[i].attnum = attnum;
		keys[i].notnull = TupleDescAttr(desc, attnum - 1)->attnotnull;
	}
}

/*---- predicate ----*/

/*
 * Render a non-null jsonb scalar (or container) as a quoted SQL literal.
 */
static char *
keyset_render_value(JsonbValue *v)
{
	char	   *s;

	switch (v->type)
	{
		case jbvString:
			s = pnstrdup(v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			s = DatumGetCString(DirectFunctionCall1(numeric_out,
													NumericGetDatum(v->val.numeric)));
			break;
		case jbvBool:
			s = pstrdup(v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			s = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
			s = NULL;			/* keep compiler quiet */
	}
	return quote_literal_cstr(s);
}

/*
 * keyset_compare_sql
 *		The one predicate builder: the rows that sort after the row whose
 *		sort values are lit[] (SQL text; NULL for a NULL value), for the
 *		ORDER BY keys[] on the expressions col[].  See the file header for
 *		the forms produced.  "wrap" puts an OR-chain in parentheses (off
 *		when the caller shows the predicate alone).  Used by
 *		keyset_predicate() with quoted literals, and by the OFFSET
 *		suggestion with $last_<column> placeholders.
 */
static char *
keyset_compare_sql(const keysetKey *keys, int nkeys, const char **col,
				   const char **lit, bool wrap)
{
	bool		samedir = true;
	bool		anynull = false;
	StringInfoData out;
	int			i,
				j;

	for (i = 0; i < nkeys; i++)
	{
		if (lit[i] == NULL)
			anynull = true;
		if (keys[i].desc != keys[0].desc)
			samedir = false;
	}

	initStringInfo(&out);

	if (samedir && !anynull)
	{
		const char *op = keys[0].desc ? "<" : ">";
		StringInfoData row;
		int			nextra = 0;

		initStringInfo(&row);
		if (nkeys == 1)
			appendStringInfo(&row, "%s %s %s", col[0], op, lit[0]);
		else
		{
			appendStringInfoChar(&row, '(');
			for (i = 0; i < nkeys; i++)
				appendStringInfo(&row, "%s%s", i ? ", " : "", col[i]);
			appendStringInfo(&row, ") %s (", op);
			for (i = 0; i < nkeys; i++)
				appendStringInfo(&row, "%s%s", i ? ", " : "", lit[i]);
			appendStringInfoChar(&row, ')');
		}

		/* rows with a NULL key that sorts after the value */
		for (i = 0; i < nkeys; i++)
		{
			if (keys[i].nulls_first || keys[i].notnull)
				continue;
			if (nextra++ == 0)
				appendStringInfo(&out, "(%s", row.data);
			appendStringInfoString(&out, " OR ");
			if (i > 0)
				appendStringInfoChar(&out, '(');
			for (j = 0; j < i; j++)
				appendStringInfo(&out, "%s = %s AND ", col[j], lit[j]);
			appendStringInfo(&out, "%s IS NULL", col[i]);
			if (i > 0)
				appendStringInfoChar(&out, ')');
		}
		if (nextra == 0)
			return row.data;
		appendStringInfoChar(&out, ')');
		return out.data;
	}
	else
	{
		List	   *disjuncts = NIL;
		ListCell   *lc;

		for (i = 0; i < nkeys; i++)
		{
			StringInfoData term;
			StringInfoData conj;

			initStringInfo(&term);
			if (lit[i] == NULL)
			{
				/* after a NULL: the values, if NULLs come first */
				if (!keys[i].nulls_first)
					continue;
				appendStringInfo(&term, "%s IS NOT NULL", col[i]);
			}
			else
			{
				const char *op = keys[i].desc ? "<" : ">";

				if (keys[i].nulls_first || keys[i].notnull)
					appendStringInfo(&term, "%s %s %s", col[i], op, lit[i]);
				else
					appendStringInfo(&term, "(%s %s %s OR %s IS NULL)",
									 col[i], op, lit[i], col[i]);
			}

			initStringInfo(&conj);
			if (i > 0)
				appendStringInfoChar(&conj, '(');
			for (j = 0; j < i; j++)
			{
				if (lit[j] == NULL)
					appendStringInfo(&conj, "%s IS NULL AND ", col[j]);
				else
					appendStringInfo(&conj, "%s = %s AND ", col[j], lit[j]);
			}
			appendStringInfoString(&conj, term.data);
			if (i > 0)
				appendStringInfoChar(&conj, ')');
			disjuncts = lappend(disjuncts, conj.data);
		}

		if (disjuncts == NIL)
			return pstrdup("false");	/* nothing sorts after this row */
		if (list_length(disjuncts) == 1)
			return (char *) linitial(disjuncts);
		if (wrap)
			appendStringInfoChar(&out, '(');
		foreach(lc, disjuncts)
		{
			if (lc != list_head(disjuncts))
				appendStringInfoString(&out, " OR ");
			appendStringInfoString(&out, (char *) lfirst(lc));
		}
		if (wrap)
			appendStringInfoChar(&out, ')');
		return out.data;
	}
}


/*
 * Build the predicate selecting the rows that sort after the row whose sort
 * values are given in after (a jsonb object keyed by column name).  Keys of
 * after that are not in the ORDER BY are ignored, so a whole to_jsonb(row)
 * may be passed.  See the file header for the forms produced.
 */
static char *
keyset_build_predicate(keysetKey *keys, int nkeys, Jsonb *after)
{
	char	  **lit = palloc0(sizeof(char *) * nkeys);
	const char **col = palloc0(sizeof(char *) * nkeys);
	int			i;

	if (!JB_ROOT_IS_OBJECT(after) || JB_ROOT_IS_SCALAR(after))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sort values must be a JSON object"),
				 errhint("Pass the sort values of the last row of the previous page keyed by column name, e.g. '{\"created_at\": \"2024-01-01T00:00:00+00:00\", \"id\": 42}'.")));

	for (i = 0; i < nkeys; i++)
	{
		JsonbValue	vbuf;
		JsonbValue *v;

		col[i] = quote_identifier(keys[i].colname);
		v = getKeyJsonValueFromContainer(&after->root, keys[i].colname,
										 strlen(keys[i].colname), &vbuf);
		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sort values have no key \"%s\"", keys[i].colname),
					 errhint("The sort values must contain every ORDER BY column; use null for a NULL value.")));
		if (v->type != jbvNull)
			lit[i] = keyset_render_value(v);
	}
	return keyset_compare_sql(keys, nkeys, col, (const char **) lit, true);
}

/*
 * keyset_predicate(order_by text, after jsonb [, rel regclass]) RETURNS text
 *
 * With rel, the columns are checked to exist and NOT NULL columns need no
 * IS NULL terms.  STRICT.
 */
Datum
perfguard_keyset_predicate(PG_FUNCTION_ARGS)
{
	char	   *order_by = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *after = PG_GETARG_JSONB_P(1);
	keysetKey  *keys;
	int			nkeys;

	keys = keyset_parse_order(order_by, &nkeys);
	if (PG_NARGS() > 2)
	{
		Relation	rel = keyset_open_relation(PG_GETARG_OID(2));

		keyset_bind_relation(rel, keys, nkeys);
		relation_close(rel, NoLock);
	}
	PG_RETURN_TEXT_P(cstring_to_text(keyset_build_predicate(keys, nkeys, after)));
}

/*---- uniqueness and indexes ----*/

/*
 * Is the ORDER BY unique on rel?  True if a valid unique, non-partial index
 * without expressions has all its key columns among the ORDER BY columns,
 * and those columns cannot hold several NULLs (NOT NULL, or NULLS NOT
 * DISTINCT).  Called with rel locked.
 */
static bool
keyset_is_unique(Relation rel, keysetKey *keys, int nkeys)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index idx = irel->rd_index;
		bool		ok = idx->indisunique && idx->indisvalid &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indexprs, NULL);
		int			k;

		for (k = 0; ok && k < idx->indnkeyatts; k++)
		{
			AttrNumber	att = idx->indkey.values[k];
			bool		in_order = false;
			int			i;

			for (i = 0; i < nkeys; i++)
				if (keys[i].attnum == att)
				{
					in_order = true;
#if PG_VERSION_NUM >= 150000
					if (!keys[i].notnull && !idx->indnullsnotdistinct)
						ok = false;
#else
					if (!keys[i].notnull)
						ok = false;
#endif
				}
			if (!in_order)
				ok = false;
		}
		index_close(irel, AccessShareLock);
		if (ok)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * The hint for a non-unique ORDER BY: the ORDER BY with the primary key
 * columns appended, in the direction of the last item.
 */
static char *
keyset_unique_hint(Relation rel, const char *order_by, keysetKey *keys,
				   int nkeys)
{
	Oid			pkoid = RelationGetPrimaryKeyIndex(rel);
	StringInfoData buf;
	Relation	irel;
	int			k;

	if (!OidIsValid(pkoid))
		return psprintf("Add a primary key (or a unique index on NOT NULL columns) and append its columns to the ORDER BY, e.g. '%s, id'.",
						order_by);

	initStringInfo(&buf);
	appendStringInfo(&buf, "Append the primary key, e.g. '%s", order_by);
	irel = index_open(pkoid, AccessShareLock);
	for (k = 0; k < irel->rd_index->indnkeyatts; k++)
	{
		AttrNumber	att = irel->rd_index->indkey.values[k];
		bool		present = false;
		int			i;

		for (i = 0; i < nkeys; i++)
			if (keys[i].attnum == att)
				present = true;
		if (!present && att > 0)
			appendStringInfo(&buf, ", %s%s",
							 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), att - 1)->attname)),
							 keys[nkeys - 1].desc ? " DESC" : "");
	}
	index_close(irel, AccessShareLock);
	appendStringInfoString(&buf, "'.");
	return buf.data;
}

/*
 * Append one ORDER BY / index column specification.  With explicit, the
 * direction and NULLS placement are always written; otherwise only what
 * differs from the defaults.
 */
static void
keyset_append_key(StringInfo buf, keysetKey *key, bool explicit)
{
	appendStringInfoString(buf, quote_identifier(key->colname));
	if (explicit)
		appendStringInfo(buf, " %s NULLS %s", key->desc ? "DESC" : "ASC",
						 key->nulls_first ? "FIRST" : "LAST");
	else
	{
		if (key->desc)
			appendStringInfoString(buf, " DESC");
		if (key->nulls_first != key->desc)
			appendStringInfo(buf, " NULLS %s", key->nulls_first ? "FIRST" : "LAST");
	}
}

/*
 * Find a valid, non-partial btree index of rel whose leading key columns are
 * the ORDER BY columns with the same directions (a forward scan) or all
 * reversed (a backward scan).  Returns its schema-qualified, quoted name, or
 * NULL.  Called with rel locked.
 */
static char *
keyset_find_index(Relation rel, keysetKey *keys, int nkeys)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	char	   *result = NULL;

	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index idx = irel->rd_index;
		bool		fwd = true;
		bool		bwd = true;
		int			i;

		if (irel->rd_rel->relam != BTREE_AM_OID || !idx->indisvalid ||
			idx->indnkeyatts < nkeys ||
			!heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL))
			fwd = bwd = false;

		for (i = 0; (fwd || bwd) && i < nkeys; i++)
		{
			int16		opt = irel->rd_indoption[i];
			bool		idesc = (opt & INDOPTION_DESC) != 0;
			bool		inf = (opt & INDOPTION_NULLS_FIRST) != 0;

			if (idx->indkey.values[i] != keys[i].attnum)
				fwd = bwd = false;
			if (idesc != keys[i].desc || inf != keys[i].nulls_first)
				fwd = false;
			if (idesc == keys[i].desc || inf == keys[i].nulls_first)
				bwd = false;
		}
		if (fwd || bwd)
			result = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(irel)),
												RelationGetRelationName(irel));
		index_close(irel, AccessShareLock);
		if (result)
			break;
	}
	list_free(indexes);
	return result;
}

/*
 * The CREATE INDEX statement for an index that serves the ORDER BY.
 * Partitioned tables cannot build indexes concurrently.
 */
static char *
keyset_index_ddl(Relation rel, keysetKey *keys, int nkeys)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE INDEX %sON %s (",
					 rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ? "" : "CONCURRENTLY ",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	for (i = 0; i < nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		keyset_append_key(&buf, &keys[i], false);
	}
	appendStringInfoString(&buf, ")");
	return buf.data;
}

/*
 * keyset_index(rel regclass, order_by text) RETURNS text
 *
 * The schema-qualified name of the index that serves the ORDER BY, or the
 * CREATE INDEX CONCURRENTLY statement of one that would.  STRICT.
 */
Datum
perfguard_keyset_index(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *order_by = text_to_cstring(PG_GETARG_TEXT_PP(1));
	keysetKey  *keys;
	int			nkeys;
	Relation	rel;
	char	   *result;

	keys = keyset_parse_order(order_by, &nkeys);
	rel = keyset_open_relation(relid);
	keyset_bind_relation(rel, keys, nkeys);
	result = keyset_find_index(rel, keys, nkeys);
	if (result == NULL)
		result = keyset_index_ddl(rel, keys, nkeys);
	relation_close(rel, NoLock);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*---- filter check ----*/

/*
 * Lex the filter with the SQL scanner: its parentheses must balance without
 * ever closing more than were opened, and it must not contain a semicolon.
 * Returns NULL if so, else a sentence saying what is wrong.  Scanner errors
 * (an unterminated string or comment) are thrown.
 */
static const char *
keyset_lex_filter(const char *filter)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			depth = 0;
	int			ntokens = 0;
	const char *problem = NULL;

	yyscanner = scanner_init(filter, &yyextra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int			tok = core_yylex(&yylval, &yylloc, yyscanner);

		if (tok == 0)
			break;
		ntokens++;
		if (tok == ';')
		{
			problem = "A filter cannot contain a semicolon.";
			break;
		}
		if (tok == '(')
			depth++;
		else if (tok == ')' && --depth < 0)
		{
			problem = "The filter closes a parenthesis that it did not open.";
			break;
		}
	}
	scanner_finish(yyscanner);

	if (problem == NULL && depth != 0)
		problem = "The filter leaves a parenthesis open.";
	if (problem == NULL && ntokens == 0)
		problem = "The filter is empty.";
	return problem;
}

/*
 * Check that filter is one SQL expression that can be embedded as
 * "WHERE (\n filter \n) AND ..." without changing the statement's shape:
 * balanced parentheses and no semicolon (keyset_lex_filter), and
 * "SELECT 1 WHERE (\n filter \n)" must parse into a single plain SELECT
 * with nothing but its WHERE clause.  The newlines end a trailing "--"
 * comment.  Semantic errors (unknown columns, a non-boolean result) are
 * left to the page query.
 */
static void
keyset_check_filter(const char *filter)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	const char *problem = NULL;
	List	   *parsetree = NIL;

	PG_TRY();
	{
		problem = keyset_lex_filter(filter);
		if (problem == NULL)
			parsetree = raw_parser(psprintf("SELECT 1 WHERE (\n%s\n)", filter),
								   RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/*
		 * Only syntax errors are turned into a filter error; the parser holds
		 * no resources, and the transaction is aborted by the ERROR below.
		 */
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_SYNTAX_ERROR)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid filter"),
				 errdetail("%s", edata->message),
				 errhint("The filter must be one boolean SQL expression on the relation's columns, e.g. 'status = ''paid'' AND total > 10'.")));
	}
	PG_END_TRY();

	if (problem == NULL)
	{
		RawStmt    *raw;
		SelectStmt *sel;

		if (list_length(parsetree) != 1)
			problem = "The filter must be a single expression.";
		else
		{
			raw = linitial_node(RawStmt, parsetree);
			sel = (SelectStmt *) raw->stmt;
			if (!IsA(sel, SelectStmt) || sel->op != SETOP_NONE ||
				sel->whereClause == NULL || list_length(sel->targetList) != 1 ||
				sel->fromClause != NIL || sel->groupClause != NIL ||
				sel->havingClause != NULL || sel->windowClause != NIL ||
				sel->distinctClause != NIL || sel->valuesLists != NIL ||
				sel->sortClause != NIL || sel->limitOffset != NULL ||
				sel->limitCount != NULL || sel->lockingClause != NIL ||
				sel->withClause != NULL || sel->intoClause != NULL)
				problem = "The filter must be a single expression.";
		}
	}

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid filter"),
				 errdetail("%s", problem),
				 errhint("The filter must be one boolean SQL expression on the relation's columns, e.g. 'status = ''paid'' AND total > 10'.")));
}

/*---- keyset_page ----*/

/*
 * The sort values of a row (to_jsonb of the table row) as a jsonb object
 * keyed by the ORDER BY column names.
 */
static Jsonb *
keyset_cursor_values(Jsonb *row, keysetKey *keys, int nkeys)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < nkeys; i++)
	{
		JsonbValue	key;
		JsonbValue	vbuf;
		JsonbValue *v;

		key.type = jbvString;
		key.val.string.val = keys[i].colname;
		key.val.string.len = strlen(keys[i].colname);
		v = getKeyJsonValueFromContainer(&row->root, keys[i].colname,
										 key.val.string.len, &vbuf);
		if (v == NULL)
			elog(ERROR, "column \"%s\" missing from row", keys[i].colname);
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * keyset_page(rel regclass, order_by text, page_size int,
 *			   cursor text DEFAULT NULL, filter text DEFAULT NULL)
 *	RETURNS TABLE(row jsonb, next_cursor text)
 *
 * Runs, through SPI in read-only mode,
 *	SELECT to_jsonb(rel.*) FROM rel
 *	WHERE (filter) AND <keyset predicate after the cursor>
 *	ORDER BY <order_by> LIMIT page_size + 1
 * and returns the first page_size rows; the last of them carries the cursor
 * of the next page when the extra row exists.  Not STRICT: cursor and
 * filter may be NULL.
 */
Datum
perfguard_keyset_page(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *order_by;
	int32		page_size;
	keysetKey  *keys;
	int			nkeys;
	Relation	rel;
	char	   *relname;
	char	   *pred = NULL;
	char	   *filter = NULL;
	char	   *index;
	StringInfoData sql;
	TupleDesc	tupdesc;
	Tuplestorestate *tupstore;
	MemoryContext oldcxt;
	int			ret;
	uint64		nrows;
	uint64		i;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel, order_by and page_size must not be NULL")));

	relid = PG_GETARG_OID(0);
	order_by = text_to_cstring(PG_GETARG_TEXT_PP(1));
	page_size = PG_GETARG_INT32(2);
	if (page_size < 1 || page_size > KEYSET_MAX_PAGE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page_size must be between 1 and %d", KEYSET_MAX_PAGE_SIZE)));
	if (!PG_ARGISNULL(4))
	{
		filter = text_to_cstring(PG_GETARG_TEXT_PP(4));
		keyset_check_filter(filter);
	}

	keys = keyset_parse_order(order_by, &nkeys);
	rel = keyset_open_relation(relid);
	keyset_bind_relation(rel, keys, nkeys);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));

	if (!keyset_is_unique(rel, keys, nkeys))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ORDER BY \"%s\" is not unique on relation \"%s\"",
						order_by, RelationGetRelationName(rel)),
				 errdetail("No primary key or unique index on NOT NULL columns has all its columns among the ORDER BY columns, so rows with equal sort values could be skipped or repeated between pages."),
				 errhint("%s", keyset_unique_hint(rel, order_by, keys, nkeys))));

	index = keyset_find_index(rel, keys, nkeys);
	if (index == NULL)
		ereport(NOTICE,
				(errmsg("no index on \"%s\" serves ORDER BY \"%s\"",
						RelationGetRelationName(rel), order_by),
				 errdetail("Every page sorts all matching rows."),
				 errhint("Create one: %s;", keyset_index_ddl(rel, keys, nkeys))));

	if (!PG_ARGISNULL(3))
		pred = keyset_build_predicate(keys, nkeys,
									  pfg_cursor_decode(PG_GETARG_TEXT_PP(3)));
	relation_close(rel, NoLock);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT to_jsonb(%s.*) FROM %s", relname, relname);
	if (filter)
		appendStringInfo(&sql, " WHERE (\n%s\n)", filter);
	if (pred)
		appendStringInfo(&sql, " %s %s", filter ? "AND" : "WHERE", pred);
	appendStringInfoString(&sql, " ORDER BY ");
	for (i = 0; i < nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(&sql, ", ");
		keyset_append_key(&sql, &keys[i], true);
	}
	appendStringInfo(&sql, " LIMIT %d", page_size + 1);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	tupstore = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(sql.data, true, page_size + 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute returned %s", SPI_result_code_string(ret));

	nrows = Min(SPI_processed, (uint64) page_size);
	for (i = 0; i < nrows; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, true};
		bool		isnull;

		values[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  1, &isnull);
		if (isnull)
			elog(ERROR, "to_jsonb returned NULL");
		values[1] = (Datum) 0;
		if (i == nrows - 1 && SPI_processed > (uint64) page_size)
		{
			Jsonb	   *sortvals = keyset_cursor_values(DatumGetJsonbP(values[0]),
														keys, nkeys);

			values[1] = PointerGetDatum(pfg_cursor_encode(sortvals));
			nulls[1] = false;
		}
		tuplestore_putvalues(tupstore, tupdesc, values, nulls);
	}
	SPI_finish();

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tupstore;
	rsinfo->setDesc = tupdesc;
	return (Datum) 0;
}

/*---- the OFFSET -> keyset suggestion ----*/

typedef struct pfgSortKey
{
	char	   *expr;			/* rendered expression */
	char	   *name;			/* placeholder name */
	bool		column;			/* a plain column reference */
	SortByDir	dir;
	SortByNulls nulls;
} pfgSortKey;

static bool
is_trailing_word(const char *w, int len)
{
	static const char *const words[] = {
		"asc", "desc", "nulls", "first", "last", "limit", "offset", "fetch",
		"next", "rows", "row", "only", "for", "update", "share", "key", "no",
		"nowait", "skip", "locked", "all", "with", "ties", NULL
	};
	int			i;

	for (i = 0; words[i]; i++)
		if ((int) strlen(words[i]) == len && pg_strncasecmp(w, words[i], len) == 0)
			return true;
	return false;
}

/*
 * sort_expr_text
 *		The source text of a sort key from "start" to "end", with trailing
 *		commas, comments, ASC/DESC/NULLS and LIMIT/OFFSET words cut off.
 */
static char *
sort_expr_text(const char *q, int start, int end)
{
	int			len = end - start;

	for (;;)
	{
		int			w;

		while (len > 0 && (isspace((unsigned char) q[start + len - 1]) ||
						   q[start + len - 1] == ',' ||
						   q[start + len - 1] == ';'))
			len--;
		if (len >= 2 && q[start + len - 1] == '/' && q[start + len - 2] == '*')
		{
			int			k = len - 2;

			while (k >= 1 && !(q[start + k - 1] == '/' && q[start + k] == '*'))
				k--;
			if (k < 1)
				break;
			len = k - 1;
			continue;
		}
		w = len;
		while (w > 0 && isalpha((unsigned char) q[start + w - 1]))
			w--;
		if (w > 0 && w < len && !isalnum((unsigned char) q[start + w - 1]) &&
			q[start + w - 1] != '_' && q[start + w - 1] != '"' &&
			is_trailing_word(q + start + w, len - w))
		{
			len = w;
			continue;
		}
		break;
	}
	return pnstrdup(q + start, Max(len, 0));
}

static int
min_location_after(Node *n, int start, int best)
{
	int			loc;

	if (n == NULL)
		return best;
	loc = exprLocation(n);
	if (loc > start && loc < best)
		return loc;
	return best;
}

/*
 * keyset_suggestion
 *		The keyset predicate that replaces OFFSET for a normalized query, from
 *		its ORDER BY.  May ERROR (syntax errors in a truncated text); the
 *		caller catches.
  *
 * Long (about 170 lines): one pass that reads the ORDER BY and writes
 * the suggestion's five parts (order, predicate, index, NULLs, helpers),
 * which share the per-key state built at the top.
 */
static char *
keyset_suggestion(const char *query)
{
	List	   *raw = raw_parser(query, RAW_PARSE_DEFAULT);
	Node	   *stmt;
	SelectStmt *sel;
	List	   *keys = NIL;
	ListCell   *lc;
	int			i = 0;
	int			nkeys;
	bool		mixed = false;
	bool		using_op = false;
	bool		nulls_given = false;
	bool		all_columns = true;
	StringInfoData order,
				kporder,
				cols,
				out;
	char	   *pred;
	pfgSortKey *first = NULL;

	if (list_length(raw) != 1)
		return NULL;
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (IsA(stmt, DeclareCursorStmt))
		stmt = ((DeclareCursorStmt *) stmt)->query;
	if (!IsA(stmt, SelectStmt))
		return NULL;
	sel = (SelectStmt *) stmt;

	if (sel->sortClause == NIL)
		return pstrdup("OFFSET without ORDER BY returns the rows in no defined order, so pages can overlap or skip rows: add an ORDER BY on a unique key and paginate by keyset instead of OFFSET, e.g. WHERE id > $last_id ORDER BY id LIMIT <page size> (the last id of the previous page is the cursor) / Django: qs.order_by('id').filter(id__gt=last_id)[:n] or DRF CursorPagination / Rails: where('id > ?', last_id).order(:id).limit(n)");

	nkeys = list_length(sel->sortClause);
	foreach(lc, sel->sortClause)
	{
		SortBy	   *sb = lfirst_node(SortBy, lc);
		pfgSortKey *k = palloc0(sizeof(pfgSortKey));

		k->dir = sb->sortby_dir;
		k->nulls = sb->sortby_nulls;
		if (IsA(sb->node, ColumnRef))
		{
			ColumnRef  *cr = (ColumnRef *) sb->node;
			StringInfoData e;
			ListCell   *fc;

			initStringInfo(&e);
			foreach(fc, cr->fields)
			{
				Node	   *f = lfirst(fc);

				if (e.len > 0)
					appendStringInfoChar(&e, '.');
				if (IsA(f, String))
					appendStringInfoString(&e, quote_identifier(strVal(f)));
				else
					appendStringInfoChar(&e, '*');
			}
			k->expr = e.data;
			if (IsA(llast(cr->fields), String))
			{
				k->name = pstrdup(strVal(llast(cr->fields)));
				k->column = true;
			}
		}
		else
		{
			int			start = exprLocation(sb->node);
			int			end = strlen(query);

			if (lnext(sel->sortClause, lc))
				end = min_location_after(((SortBy *) lfirst(lnext(sel->sortClause, lc)))->node,
										 start, end);
			end = min_location_after(sel->limitCount, start, end);
			end = min_location_after(sel->limitOffset, start, end);
			if (start < 0)
				k->expr = psprintf("<sort key %d>", i + 1);
			else
				k->expr = sort_expr_text(query, start, end);
		}
		if (k->name == NULL)
			k->name = psprintf("key%d", i + 1);
		if (k->dir == SORTBY_USING)
			using_op = true;
		if (!k->column)
			all_columns = false;
		if (k->nulls != SORTBY_NULLS_DEFAULT)
			nulls_given = true;
		if (first == NULL)
			first = k;
		else if ((first->dir == SORTBY_DESC) != (k->dir == SORTBY_DESC))
			mixed = true;
		keys = lappend(keys, k);
		i++;
	}

	initStringInfo(&order);
	initStringInfo(&kporder);
	initStringInfo(&cols);
	foreach(lc, keys)
	{
		pfgSortKey *k = lfirst(lc);
		const char *dir = (k->dir == SORTBY_DESC) ? " DESC" : "";
		const char *nl = (k->nulls == SORTBY_NULLS_FIRST) ? " NULLS FIRST" :
			(k->nulls == SORTBY_NULLS_LAST) ? " NULLS LAST" : "";

		if (order.len > 0)
		{
			appendStringInfoString(&order, ", ");
			appendStringInfoString(&kporder, ", ");
			appendStringInfoString(&cols, ", ");
		}
		appendStringInfo(&order, "%s%s%s", k->expr, dir, nl);
		/* keyset_predicate takes bare column names */
		appendStringInfo(&kporder, "%s%s%s", quote_identifier(k->name), dir, nl);
		appendStringInfo(&cols, "%s%s", k->expr, mixed ? dir : "");
	}

	initStringInfo(&out);
	if (using_op)
	{
		appendStringInfo(&out,
						 "replace OFFSET with a keyset predicate on the ORDER BY columns (%s): the page after the last row is the rows that sort after it, which an ORDER BY ... USING operator makes hard to express; sort by plain columns ending with a unique key and use perfguard.keyset_predicate('<order by>', '<jsonb of the last row>')",
						 order.data);
		return out.data;
	}

	/* the predicate, with $last_<name> for the last row's values */
	{
		keysetKey  *kk = palloc0(sizeof(keysetKey) * nkeys);
		const char **col = palloc(sizeof(char *) * nkeys);
		const char **lit = palloc(sizeof(char *) * nkeys);

		i = 0;
		foreach(lc, keys)
		{
			pfgSortKey *k = lfirst(lc);

			kk[i].desc = (k->dir == SORTBY_DESC);
			kk[i].nulls_first = kk[i].desc;
			kk[i].notnull = true;	/* NULLs are mentioned separately */
			col[i] = k->expr;
			lit[i] = psprintf("$last_%s", k->name);
			i++;
		}
		pred = keyset_compare_sql(kk, nkeys, col, lit, false);
	}

	appendStringInfo(&out,
					 "replace OFFSET with a keyset predicate built from the last row of the previous page: WHERE %s ORDER BY %s LIMIT <page size>",
					 pred, order.data);
	if (mixed)
		appendStringInfoString(&out,
							   " (the ORDER BY mixes ASC and DESC, so a single row comparison cannot express it; the predicate is expanded column by column)");
	appendStringInfo(&out,
					 "; the ORDER BY must be unique (end it with the primary key) and an index on (%s) makes each page an index range scan",
					 cols.data);
	if (nulls_given)
		appendStringInfoString(&out, "; the NULLS FIRST/LAST placement needs IS NULL branches");
	if (all_columns)
		appendStringInfo(&out,
						 "; perfguard.keyset_predicate(%s, '<jsonb of the last row>') builds the predicate (NULLs and mixed directions included) and perfguard.keyset_page() serves whole pages",
						 quote_literal_cstr(kporder.data));
	appendStringInfoString(&out,
						   " / Django: filter on the last row's values instead of slicing at an offset, or DRF CursorPagination / Rails: where with the last row's values and .limit(n) instead of .offset()");
	return out.data;
}

/*
 * perfguard_keyset_suggestion
 *		perfguard._keyset_suggestion(query text): the suggestion of
 *		perfguard.offset_pagination.  A text that does not parse (truncated,
 *		or NULL because the caller may not see it) gets the generic advice.
 */
typedef struct suggestArgs
{
	const char *query;
	char	   *result;
} suggestArgs;

static void
keyset_suggestion_fn(void *arg)
{
	suggestArgs *a = (suggestArgs *) arg;

	a->result = keyset_suggestion(a->query);
}

Datum
perfguard_keyset_suggestion(PG_FUNCTION_ARGS)
{
	suggestArgs a;

	a.query = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	a.result = NULL;
	if (a.query &&
		!pfg_report_guarded(keyset_suggestion_fn, &a, CurrentMemoryContext))
		a.result = NULL;
	if (a.result == NULL)
		a.result = "replace OFFSET with a keyset predicate on the ORDER BY columns: WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT <page size>, with the values of the last row of the previous page; perfguard.keyset_predicate('<order by>', '<jsonb of the last row>') builds it / Django: DRF CursorPagination / Rails: where(...).limit(n) instead of .offset()";
	PG_RETURN_TEXT_P(cstring_to_text(a.result));
}
