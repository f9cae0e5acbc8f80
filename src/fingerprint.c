/*-------------------------------------------------------------------------
 *
 * fingerprint.c
 *		Statement identity for perfguard: IN-list folding on top of the core
 *		query id, cheap hashes of a statement's parameter values, the
 *		normalised text stored with a new entry, and sqlcommenter tags.
 *
 * The fingerprint is the core query id.  In PostgreSQL 15 every element of
 * a constant list is jumbled, so "IN (1,2)" and "IN (1,2,3)" differ; for the
 * few statements that hold such a list we re-jumble the query with each
 * list cut to its first element (pfg_fold_inlists).  A cheap test on the
 * constant locations (two constants separated only by a comma) decides
 * whether the tree is walked at all.
 *
 * Parameter identity ("same statement, same values?") must not cost a walk
 * of the tree or a hash of the whole text: for the simple protocol we hash
 * only the bytes of each constant, found through the jumble's constant
 * locations; for the extended protocol we hash the bound values.  Values
 * never leave backend-local memory, except as an example parameter set when
 * perfguard.capture_parameters is on.
 *
 * The normalised text is produced by the core lexer (constants become $n,
 * constant IN/ARRAY lists become "$n" followed by a comment) and is only built when a
 * statement entry is created.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/fingerprint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/keywords.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "nodes/params.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/queryjumble.h"

#include "fingerprint.h"

/*---- IN-list folding ----*/

typedef struct foldContext
{
	List	   *arrays;			/* ArrayExprs found */
} foldContext;

/*
 * fold_is_simple_element
 *		Is this list element a constant or a parameter (possibly under an
 *		implicit coercion)?
 */
static bool
fold_is_simple_element(Node *n)
{
	while (n)
	{
		if (IsA(n, Const) || IsA(n, Param))
			return true;
		if (IsA(n, RelabelType))
			n = (Node *) ((RelabelType *) n)->arg;
		else if (IsA(n, CoerceViaIO))
			n = (Node *) ((CoerceViaIO *) n)->arg;
		else if (IsA(n, FuncExpr) &&
				 ((FuncExpr *) n)->funcformat == COERCE_IMPLICIT_CAST &&
				 list_length(((FuncExpr *) n)->args) >= 1)
			n = linitial(((FuncExpr *) n)->args);
		else
			return false;
	}
	return false;
}

static bool
fold_walker(Node *node, foldContext *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, ArrayExpr))
	{
		ArrayExpr  *a = (ArrayExpr *) node;
		ListCell   *lc;
		bool		simple = list_length(a->elements) >= 2;

		foreach(lc, a->elements)
		{
			if (!fold_is_simple_element(lfirst(lc)))
			{
				simple = false;
				break;
			}
		}
		if (simple)
		{
			ctx->arrays = lappend(ctx->arrays, a);
			return false;
		}
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, fold_walker, ctx, 0);
	return expression_tree_walker(node, fold_walker, ctx);
}

/*
 * opens_values_row
 *		Does the constant at src[loc] open a row of VALUES, "VALUES (" right
 *		before it?  Such a row is a list of columns, not a list to fold.
 */
static bool
opens_values_row(const char *src, int loc)
{
	int			q = loc - 1;
	int			end;

	while (q >= 0 && (src[q] == ' ' || src[q] == '\n' || src[q] == '\t' ||
					  src[q] == '\r'))
		q--;
	if (q < 0 || src[q] != '(')
		return false;
	q--;
	while (q >= 0 && (src[q] == ' ' || src[q] == '\n' || src[q] == '\t' ||
					  src[q] == '\r'))
		q--;
	end = q;
	while (q >= 0 && ((src[q] >= 'a' && src[q] <= 'z') ||
					  (src[q] >= 'A' && src[q] <= 'Z')))
		q--;
	return end - q == 6 && pg_strncasecmp(src + q + 1, "values", 6) == 0;
}

/*
 * fold_candidate
 *		Cheap pre-test: do two constants stand next to each other, separated
 *		only by a comma and whitespace, other than in the row of an INSERT's
 *		VALUES?  Only then can the query hold a constant list worth folding
 *		(the walk over the tree costs far more than this).
 */
static bool
fold_candidate(const char *src, JumbleState *jstate)
{
	int			i;
	bool		in_values_row = false;

	if (jstate == NULL || jstate->clocations_count < 2 || src == NULL)
		return false;
	for (i = 1; i < jstate->clocations_count; i++)
	{
		int			prev = jstate->clocations[i - 1].location;
		int			p = jstate->clocations[i].location - 1;

		if (p <= prev || prev < 0)
		{
			in_values_row = false;
			continue;
		}
		while (p > prev && (src[p] == ' ' || src[p] == '\n' ||
							src[p] == '\t' || src[p] == '\r'))
			p--;
		if (src[p] != ',')
		{
			in_values_row = false;
			continue;
		}
		/* the next columns of a VALUES row are not a list either */
		if (in_values_row || opens_values_row(src, prev))
		{
			in_values_row = true;
			continue;
		}
		return true;
	}
	return false;
}

/*
 * pfg_fold_inlists
 *		Return the query id of "query" with every constant list cut to one
 *		element, or 0 when the query holds no such list.  The tree is left as
 *		it was.
 */
uint64
pfg_fold_inlists(Query *query, const char *src, JumbleState *jstate)
{
	foldContext ctx;
	List	   *saved = NIL;
	ListCell   *lc;
	ListCell   *lc2;
	uint64		orig;
	uint64		folded;
	JumbleState *js;

	if (!fold_candidate(src, jstate))
		return 0;

	ctx.arrays = NIL;
	(void) query_tree_walker(query, fold_walker, &ctx, 0);
	if (ctx.arrays == NIL)
		return 0;

	foreach(lc, ctx.arrays)
	{
		ArrayExpr  *a = lfirst(lc);

		saved = lappend(saved, a->elements);
		a->elements = list_make1(linitial(a->elements));
	}

	orig = query->queryId;
	js = JumbleQuery(query, src);
	folded = query->queryId;
	query->queryId = orig;
	if (js)
	{
		pfree(js->jumble);
		pfree(js->clocations);
		pfree(js);
	}

	forboth(lc, ctx.arrays, lc2, saved)
	{
		ArrayExpr  *a = lfirst(lc);

		list_free(a->elements);
		a->elements = lfirst(lc2);
	}
	list_free(saved);
	list_free(ctx.arrays);

	/* keep folded ids apart from ordinary ones that might collide */
	folded ^= UINT64CONST(0x9e3779b97f4a7c15);
	return folded ? folded : 1;
}

/*---- parameter hashes ----*/

/* Characters of a bare token: letters, digits, '_', '.', '&' (ASCII). */
static const bool token_char[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['_'] = 1, ['.'] = 1, ['&'] = 1
};

/* Does the bare token that starts at src[loc] go on at src[p]?  (1e-5) */
static inline bool
token_continues(const char *src, int p, int loc)
{
	return token_char[(unsigned char) src[p]] ||
		((src[p] == '+' || src[p] == '-') && p > loc &&
		 (src[p - 1] == 'e' || src[p - 1] == 'E'));
}

/*
 * literal_end
 *		Offset just past the literal that starts at src[loc]: a quoted string
 *		(with '' escapes and an optional E/B/X/U& prefix or a type name
 *		before it), or a bare token (number, keyword constant).
 */
static int
literal_end(const char *src, int loc)
{
	int			p = loc;

	/* a negative number: the constant's location is its sign */
	if (src[p] == '-' || src[p] == '+')
	{
		p++;
		while (src[p] == ' ')
			p++;
		loc = p;
	}

	/* a word (prefix letter or type name) may precede a quoted string */
	while (token_continues(src, p, loc))
		p++;
	if (p > loc && src[p] != '\'')
	{
		int			q = p;

		while (src[q] == ' ')
			q++;
		if (src[q] != '\'')
			return p;
		p = q;
	}
	if (src[p] == '\'')
	{
		p++;
		for (;;)
		{
			if (src[p] == '\0')
				return p;
			if (src[p] == '\\' && src[p + 1])
			{
				p += 2;
				continue;
			}
			if (src[p] == '\'')
			{
				if (src[p + 1] == '\'')
				{
					p += 2;
					continue;
				}
				return p + 1;
			}
			p++;
		}
	}
	if (p == loc && src[p])
		p++;
	return p;
}

/*
 * pfg_hash_constants
 *		Hash of the constants of a statement (simple protocol), read at the
 *		jumble's constant locations in the source text.  0 when there is none.
 */
uint64
pfg_hash_constants(const char *src, JumbleState *jstate)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);	/* FNV-1a */
	int			i;

	if (jstate == NULL || src == NULL || jstate->clocations_count == 0)
		return 0;
	for (i = 0; i < jstate->clocations_count; i++)
	{
		int			loc = jstate->clocations[i].location;
		int			end;
		int			p;

		if (loc < 0)
			continue;
		if (src[loc] >= '0' && src[loc] <= '9')
		{
			/* a number, the common case: hashed as it is scanned */
			uint64		hn = h;
			int			q;

			p = loc;
			while (token_continues(src, p, loc))
			{
				hn ^= (unsigned char) src[p];
				hn *= UINT64CONST(0x100000001b3);
				p++;
			}
			for (q = p; src[q] == ' '; q++)
				;
			if (src[q] != '\'')
			{
				h = hn ^ 0xff;
				h *= UINT64CONST(0x100000001b3);
				continue;
			}
		}
		end = literal_end(src, loc);
		for (p = loc; p < end; p++)
		{
			h ^= (unsigned char) src[p];
			h *= UINT64CONST(0x100000001b3);
		}
		/* a separator, so that ('ab','c') and ('a','bc') differ */
		h ^= 0xff;
		h *= UINT64CONST(0x100000001b3);
	}
	return h ? h : 1;
}

/* A small cache of (type oid -> typlen, typbyval), to keep the syscache off
 * the hot path after the first use of each type. */
#define TYPCACHE_SIZE 32
static struct
{
	Oid			typid;
	int16		typlen;
	bool		typbyval;
}			typcache[TYPCACHE_SIZE];

static void
param_type_info(Oid typid, int16 *typlen, bool *typbyval)
{
	int			slot = typid % TYPCACHE_SIZE;

	if (typcache[slot].typid != typid || typid == InvalidOid)
	{
		get_typlenbyval(typid, &typcache[slot].typlen, &typcache[slot].typbyval);
		typcache[slot].typid = typid;
	}
	*typlen = typcache[slot].typlen;
	*typbyval = typcache[slot].typbyval;
}

/*
 * pfg_hash_params
 *		Hash of the bound parameter values (extended protocol, EXECUTE).
 *		0 when there are none or they are fetched lazily (PL/pgSQL).
 */
uint64
pfg_hash_params(ParamListInfo params)
{
	uint64		h = 0;
	int			i;

	if (params == NULL || params->numParams == 0 || params->paramFetch != NULL)
		return 0;
	for (i = 0; i < params->numParams; i++)
	{
		ParamExternData *p = &params->params[i];
		int16		typlen;
		bool		typbyval;
		uint64		v;

		if (p->isnull || !OidIsValid(p->ptype))
		{
			h = hash_combine64(h, i + 1);
			continue;
		}
		param_type_info(p->ptype, &typlen, &typbyval);
		if (typbyval)
			v = hash_bytes_uint32_extended((uint32) p->value,
										   (uint64) (p->value >> 32));
		else if (typlen == -1)
		{
			struct varlena *vl = (struct varlena *) DatumGetPointer(p->value);

			if (VARATT_IS_EXTENDED(vl) && !VARATT_IS_SHORT(vl))
				vl = pg_detoast_datum_packed(vl);
			v = hash_bytes_extended((const unsigned char *) VARDATA_ANY(vl),
									VARSIZE_ANY_EXHDR(vl), i);
		}
		else if (typlen == -2)
		{
			const char *s = DatumGetCString(p->value);

			v = hash_bytes_extended((const unsigned char *) s, strlen(s), i);
		}
		else
			v = hash_bytes_extended((const unsigned char *) DatumGetPointer(p->value),
									typlen, i);
		h = hash_combine64(h, v);
	}
	return h ? h : 1;
}

/*---- statement text ----*/

/*
 * pfg_statement_text_slow
 *		Turn (stmt_location, stmt_len) into a usable range of src, skipping
 *		leading white space (as CleanQuerytext does, without allocating).
 *		pfg_statement_text (fingerprint.h) returns at once when there is
 *		nothing to do.
 */
void
pfg_statement_text_slow(const char *src, int *loc, int *len)
{
	int			l = *loc;
	int			n = *len;

	if (l < 0)
	{
		l = 0;
		n = strlen(src);
	}
	else if (n <= 0)
		n = strlen(src + l);
	while (n > 0 && (src[l] == ' ' || src[l] == '\n' || src[l] == '\t' ||
					 src[l] == '\r' || src[l] == '\f'))
	{
		l++;
		n--;
	}
	*loc = l;
	*len = n;
}

/*
 * strip_trailing
 *		Length of src[0, len) without trailing white space, semicolons and
 *		trailing comments.
 */
static int
strip_trailing(const char *s, int len)
{
	for (;;)
	{
		while (len > 0 && (scanner_isspace(s[len - 1]) || s[len - 1] == ';'))
			len--;
		if (len >= 4 && s[len - 1] == '/' && s[len - 2] == '*')
		{
			int			p = len - 3;

			while (p > 0 && !(s[p - 1] == '/' && s[p] == '*'))
				p--;
			if (p <= 0)
				return len;
			len = p - 1;
			continue;
		}
		return len;
	}
}

/*---- normalised text ----*/

typedef struct pfgToken
{
	int			tok;
	int			start;
} pfgToken;

static bool
is_const_token(int tok)
{
	return tok == SCONST || tok == USCONST || tok == ICONST ||
		tok == FCONST || tok == BCONST || tok == XCONST;
}

/* Does this token end an ORDER BY / GROUP BY list (or one element)? */
static bool
ends_by_list(int tok)
{
	return tok == LIMIT || tok == OFFSET || tok == FETCH || tok == FOR ||
		tok == HAVING || tok == WINDOW || tok == UNION || tok == INTERSECT ||
		tok == EXCEPT || tok == ORDER || tok == RETURNING || tok == ';';
}

/* Most parenthesis levels tracked by mark_ordinals; deeper ones are opaque. */
#define PFG_ORD_DEPTH	32

/*
 * mark_ordinals
 *		Set keep[i] for the integer constants that are ordinal references
 *		of a query-level ORDER BY, GROUP BY or DISTINCT ON list ("ORDER BY 1
 *		DESC", "GROUP BY 1, 2"): they name an output column, they are not
 *		values, and they stay as written in the normalised text (as
 *		pg_stat_statements keeps them, since parse analysis turns them into
 *		column references).  An element is an ordinal when it is a bare
 *		integer: preceded by BY or a comma of the list and followed by a
 *		comma, ASC, DESC, NULLS, the end of the list or of the statement.
 *		"Query-level" means the statement itself or a parenthesised
 *		subquery: an ORDER BY inside OVER (...) or an aggregate's argument
 *		list sorts by a constant, and its integers stay values.
 */
static void
mark_ordinals(const pfgToken *toks, int ntoks, bool *keep)
{
	struct
	{
		bool		query;		/* a (sub)query: its ORDER BY takes ordinals */
		bool		in_list;	/* inside its ORDER BY / GROUP BY list */
	}			frames[PFG_ORD_DEPTH];
	int			depth = 0;
	int			opaque = 0;		/* levels beyond PFG_ORD_DEPTH */
	int			i;

	frames[0].query = true;
	frames[0].in_list = false;
	for (i = 0; i < ntoks; i++)
	{
		int			tok = toks[i].tok;
		int			prev = (i > 0) ? toks[i - 1].tok : 0;
		int			next = (i + 1 < ntoks) ? toks[i + 1].tok : 0;

		if (tok == '(' || tok == '[')
		{
			if (opaque > 0 || depth + 1 >= PFG_ORD_DEPTH)
			{
				opaque++;
				continue;
			}
			depth++;
			frames[depth].query = (next == SELECT || next == VALUES ||
								   next == WITH || next == TABLE || next == '(');
			/* DISTINCT ON ( list ): ordinals, like ORDER BY */
			frames[depth].in_list = (tok == '(' && prev == ON && i >= 2 &&
									 toks[i - 2].tok == DISTINCT);
			continue;
		}
		if (tok == ')' || tok == ']')
		{
			if (opaque > 0)
				opaque--;
			else if (depth > 0)
				depth--;
			continue;
		}
		if (opaque > 0)
			continue;
		if (tok == SELECT || tok == VALUES)
		{
			frames[depth].query = true;
			frames[depth].in_list = false;
		}
		else if (tok == BY && (prev == ORDER || prev == GROUP_P))
			frames[depth].in_list = frames[depth].query;
		else if (frames[depth].in_list && ends_by_list(tok))
			frames[depth].in_list = false;
		else if (tok == ICONST && frames[depth].in_list &&
				 (prev == BY || prev == ',' || prev == '(') &&
				 (next == 0 || next == ',' || next == ')' || next == ASC ||
				  next == DESC || next == NULLS_P || ends_by_list(next)))
			keep[i] = true;
	}
}

/*
 * pfg_normalize_query
 *		Normalised copy of the statement src[loc, loc+*len): constants become
 *		$n (numbered after the statement's own parameters), a constant list
 *		after IN ( or ARRAY[ becomes "$n" and a comment ", ...", the trailing comment is
 *		dropped.  Ordinal references (ORDER BY 1, GROUP BY 1) are column
 *		references, not constants, and stay (mark_ordinals).  *len is set to the result's length.  May ERROR (lexer), so
 *		callers wrap it.
 */
char *
pfg_normalize_query(const char *src, int loc, int *len)
{
	char	   *stmt;
	int			n = *len;
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	pfgToken   *toks;
	bool	   *keep;
	int			ntoks = 0;
	int			maxtoks = 64;
	int			maxparam = 0;
	StringInfoData buf;
	int			last = 0;
	int			next_param;
	int			i;

	pfg_statement_text(src, &loc, &n);
	n = strip_trailing(src + loc, n);
	stmt = pnstrdup(src + loc, n);

	toks = palloc(sizeof(pfgToken) * maxtoks);
	yyscanner = scanner_init(stmt, &yyextra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int			tok = core_yylex(&yylval, &yylloc, yyscanner);

		if (tok == 0)
			break;
		if (tok == PARAM && yylval.ival > maxparam)
			maxparam = yylval.ival;
		if (ntoks == maxtoks)
		{
			maxtoks *= 2;
			toks = repalloc(toks, sizeof(pfgToken) * maxtoks);
		}
		toks[ntoks].tok = tok;
		toks[ntoks].start = yylloc;
		ntoks++;
	}
	scanner_finish(yyscanner);

	initStringInfo(&buf);
	next_param = maxparam + 1;
	keep = palloc0(sizeof(bool) * Max(ntoks, 1));
	mark_ordinals(toks, ntoks, keep);

	/* "PREPARE name [(types)] AS stmt": keep the statement only */
	i = 0;
	if (ntoks > 2 && toks[0].tok == PREPARE)
	{
		int			depth = 0;

		for (i = 1; i < ntoks; i++)
		{
			if (toks[i].tok == '(')
				depth++;
			else if (toks[i].tok == ')')
				depth--;
			else if (toks[i].tok == AS && depth == 0)
				break;
		}
		if (i + 1 < ntoks)
		{
			i++;
			last = toks[i].start;
		}
		else
			i = 0;
	}

	for (; i < ntoks; i++)
	{
		int			tok = toks[i].tok;

		/* IN ( c, c, ... ) or ARRAY[ c, c, ... ] */
		if (((tok == '(' && i > 0 && toks[i - 1].tok == IN_P) ||
			 (tok == '[' && i > 0 && toks[i - 1].tok == ARRAY)) &&
			i + 1 < ntoks && is_const_token(toks[i + 1].tok))
		{
			int			j = i + 1;
			int			count = 0;
			char		close = (tok == '(') ? ')' : ']';

			while (j + 1 < ntoks && is_const_token(toks[j].tok) &&
				   toks[j + 1].tok == ',')
			{
				j += 2;
				count++;
			}
			if (j + 1 < ntoks && is_const_token(toks[j].tok) &&
				toks[j + 1].tok == close && count >= 1)
			{
				appendBinaryStringInfo(&buf, stmt + last,
									   toks[i + 1].start - last);
				appendStringInfo(&buf, "$%d /*, ... */", next_param++);
				last = toks[j + 1].start;
				i = j;
				continue;
			}
		}
		if (is_const_token(tok) && !keep[i])
		{
			int			end = (i + 1 < ntoks) ? toks[i + 1].start : n;
			int			start = toks[i].start;

			/* a unary minus belongs to the constant */
			if (i >= 1 && toks[i - 1].tok == '-' && toks[i - 1].start >= last &&
				(i < 2 || !(toks[i - 2].tok == IDENT ||
							is_const_token(toks[i - 2].tok) ||
							toks[i - 2].tok == ')' || toks[i - 2].tok == ']' ||
							toks[i - 2].tok == PARAM)))
				start = toks[i - 1].start;

			while (end > toks[i].start + 1 && scanner_isspace(stmt[end - 1]))
				end--;
			appendBinaryStringInfo(&buf, stmt + last, start - last);
			appendStringInfo(&buf, "$%d", next_param++);
			last = end;
		}
	}
	appendBinaryStringInfo(&buf, stmt + last, n - last);

	pfree(toks);
	pfree(keep);
	pfree(stmt);
	*len = buf.len;
	return buf.data;
}

/*
 * pfg_format_params
 *		An example parameter set, for perfguard.capture_parameters: the bound
 *		values (extended protocol) or the constants of the statement text, as
 *		"$1 = '...', $2 = ...", at most PFG_PARAMS_LEN bytes.  Catalog access
 *		(output functions): call only where that is allowed, wrapped.
 */
char *
pfg_format_params(const char *src, int loc, int len, ParamListInfo params)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	if (params && params->numParams > 0 && params->paramFetch == NULL)
	{
		for (i = 0; i < params->numParams && buf.len < PFG_PARAMS_LEN; i++)
		{
			ParamExternData *p = &params->params[i];

			if (i > 0)
				appendStringInfoString(&buf, ", ");
			if (p->isnull || !OidIsValid(p->ptype))
				appendStringInfo(&buf, "$%d = NULL", i + 1);
			else
			{
				Oid			typout;
				bool		isvarlena;
				char	   *s;

				getTypeOutputInfo(p->ptype, &typout, &isvarlena);
				s = OidOutputFunctionCall(typout, p->value);
				appendStringInfo(&buf, "$%d = %s", i + 1, quote_literal_cstr(s));
			}
		}
	}
	else if (src)
	{
		core_yyscan_t yyscanner;
		core_yy_extra_type yyextra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		char	   *stmt;
		int			n = len;
		int			k = 1;

		pfg_statement_text(src, &loc, &n);
		n = strip_trailing(src + loc, n);
		stmt = pnstrdup(src + loc, n);
		yyscanner = scanner_init(stmt, &yyextra, &ScanKeywords, ScanKeywordTokens);
		for (;;)
		{
			int			tok = core_yylex(&yylval, &yylloc, yyscanner);

			if (tok == 0 || buf.len >= PFG_PARAMS_LEN)
				break;
			if (!is_const_token(tok))
				continue;
			if (k > 1)
				appendStringInfoString(&buf, ", ");
			if (tok == ICONST)
				appendStringInfo(&buf, "$%d = %d", k, yylval.ival);
			else
				appendStringInfo(&buf, "$%d = %s", k,
								 quote_literal_cstr(yylval.str));
			k++;
		}
		scanner_finish(yyscanner);
		pfree(stmt);
	}
	if (buf.len >= PFG_PARAMS_LEN)
	{
		int			cut = pg_mbcliplen(buf.data, buf.len, PFG_PARAMS_LEN - 4);

		buf.data[cut] = '\0';
		strcat(buf.data, "...");
	}
	return buf.data;
}
