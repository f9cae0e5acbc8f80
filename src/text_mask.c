/*-------------------------------------------------------------------------
 *
 * text_mask.c
 *		Literal masking: the constants of a sampled plan's EXPLAIN text and
 *		the values an error message quotes become $n, so that with
 *		perfguard.capture_parameters off no parameter value reaches shared
 *		memory (the contract), while the plan's shape, costs and row counts
 *		and the message's object names stay.
 *
 * Plans (pfg_mask_plan_text), as pg_store_plans normalises them: the
 * EXPLAIN text is read line by line.  Every single-quoted literal becomes
 * $n (with its E prefix; the cast after it stays: '...'::text becomes
 * $1::text).  Numbers become $n on the lines that show an expression
 * ("Filter: (n < 2)", "Index Cond: (id = 42)", "Sort Key", "Output", and
 * any label not known to be a counter); on node lines (costs, rows,
 * loops) and counter lines ("Rows Removed by Filter: 42", "Buckets: ...")
 * they stay.  Identifiers (t1, "Seq 2"), parameters ($1) and subplan
 * names (SubPlan 1) stay.  The $n are numbered after the plan's own
 * parameters.
 *
 * Error messages (pfg_mask_error_message): single-quoted literals and
 * numbers become $n, and so does a double-quoted string, unless the word
 * before it names a kind of object (relation "t", constraint "t_pkey",
 * column "x"): an object name is not a value.  So "invalid input syntax
 * for type integer: "abc"" becomes "... integer: $1" while "duplicate key
 * value violates unique constraint "t_pkey"" stays.  This one writes into
 * a caller's buffer and allocates nothing: it runs inside error reporting.
 *
 * Pure string functions: no catalog access, no locks.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/text_mask.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "text_mask.h"

/* Labels of EXPLAIN text lines that show counters, not expressions. */
static const char *const counter_labels[] = {
	"Rows Removed by Filter", "Rows Removed by Join Filter",
	"Rows Removed by Index Recheck", "Heap Fetches", "Heap Blocks",
	"Sort Method", "Buckets", "Batches", "Memory Usage", "Peak Memory Usage",
	"Disk Usage", "Workers Planned", "Workers Launched", "Hits", "Misses",
	"Evictions", "Overflows", "Subplans Removed", "Full-sort Groups",
	"Pre-sorted Groups", "Planning Time", "Execution Time", "Planning",
	"Buffers", "I/O Timings", "WAL", "Planned Partitions", "HashAgg Batches",
	"Sort Space Used", "Exact Heap Blocks", "Lossy Heap Blocks", "Cache Mode",
	"Storage", "Trigger", "JIT", "Functions", "Options", "Timing",
	"Memory", "Estimates", "Group Count", "Sort Space", NULL
};

/* Words before a double-quoted object name in error messages. */
static const char *const object_words[] = {
	"relation", "table", "column", "constraint", "index", "type", "function",
	"schema", "database", "role", "user", "sequence", "view", "operator",
	"trigger", "extension", "collation", "domain", "attribute", "tablespace",
	"publication", "subscription", "policy", "rule", "server", "aggregate",
	"procedure", "routine", "cursor", "portal", "statement", "savepoint",
	"parameter", "conversion", "configuration", "dictionary", "parser",
	"template", "language", "partition", "class", "family", "method",
	"wrapper", "mapping", "event", "file", "directory", "encoding",
	"object", "channel", "field", "transform", "cast", "statistics",
	"variable", "option", "setting", "module", "library", "identifier",
	"owner", NULL
};

static bool
is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '$' ||
		(unsigned char) c >= 0x80;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * number_end
 *		The end of a numeric literal starting at s (digits, a fraction, an
 *		exponent).
 */
static const char *
number_end(const char *s)
{
	while (is_digit(*s))
		s++;
	if (*s == '.' && is_digit(s[1]))
	{
		s++;
		while (is_digit(*s))
			s++;
	}
	if ((*s == 'e' || *s == 'E') &&
		(is_digit(s[1]) || ((s[1] == '+' || s[1] == '-') && is_digit(s[2]))))
	{
		s += 2;
		while (is_digit(*s))
			s++;
	}
	return s;
}

/*
 * quoted_end
 *		The end of a quoted string starting at s (*s is the quote): a doubled
 *		quote is part of it, and so is a backslash escape when "backslash".
 */
static const char *
quoted_end(const char *s, bool backslash)
{
	char		q = *s++;

	while (*s)
	{
		if (backslash && *s == '\\' && s[1])
			s += 2;
		else if (*s == q && s[1] == q)
			s += 2;
		else if (*s == q)
			return s + 1;
		else
			s++;
	}
	return s;
}

/* The highest $n in a text (0 if none). */
static int
max_param(const char *s)
{
	int			max = 0;

	for (; *s; s++)
	{
		if (*s == '$' && is_digit(s[1]))
		{
			int			n = atoi(s + 1);

			if (n > max && n < 100000)
				max = n;
		}
	}
	return max;
}

/*
 * line_masks_numbers
 *		Does this EXPLAIN line show an expression ("Label: expr" with a label
 *		that is not a counter's)?
 */
static bool
line_masks_numbers(const char *line, const char *end)
{
	const char *p = line;
	const char *label;
	int			len;
	int			i;

	while (p < end && *p == ' ')
		p++;
	if (end - p >= 4 && strncmp(p, "->  ", 4) == 0)
		p += 4;
	label = p;
	while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
					   *p == ' ' || *p == '-' || *p == '/'))
		p++;
	if (p == label || p + 1 >= end || p[0] != ':' || p[1] != ' ')
		return false;
	len = p - label;
	for (i = 0; counter_labels[i]; i++)
		if ((int) strlen(counter_labels[i]) == len &&
			strncmp(counter_labels[i], label, len) == 0)
			return false;
	return true;
}

/*
 * pfg_mask_plan_text
 *		A palloc'd copy of an EXPLAIN text with its literals as $n (see the
 *		file header).
 */
char *
pfg_mask_plan_text(const char *plan)
{
	StringInfoData buf;
	const char *line = plan;
	int			next = max_param(plan) + 1;

	initStringInfo(&buf);
	while (*line)
	{
		const char *end = strchr(line, '\n');
		const char *p = line;
		bool		numbers;
		const char *prevword = NULL;
		int			prevlen = 0;

		if (end == NULL)
			end = line + strlen(line);
		numbers = line_masks_numbers(line, end);
		while (p < end)
		{
			if (*p == '"')
			{
				const char *q = Min(quoted_end(p, false), end);

				appendBinaryStringInfo(&buf, p, q - p);
				p = q;
			}
			else if (*p == '\'' ||
					 ((*p == 'E' || *p == 'e') && p[1] == '\'' &&
					  (p == line || !is_ident_char(p[-1]))))
			{
				bool		esc = (*p != '\'');
				const char *q = quoted_end(esc ? p + 1 : p, esc);

				appendStringInfo(&buf, "$%d", next++);
				p = Min(q, end);
			}
			else if (is_ident_char(*p) && !is_digit(*p))
			{
				const char *q = p;

				while (q < end && is_ident_char(*q))
					q++;
				appendBinaryStringInfo(&buf, p, q - p);
				prevword = p;
				prevlen = q - p;
				p = q;
				continue;
			}
			else if (is_digit(*p))
			{
				const char *q = number_end(p);
				bool		named = (prevword != NULL &&
									 ((prevlen == 7 && strncmp(prevword, "SubPlan", 7) == 0) ||
									  (prevlen == 8 && strncmp(prevword, "InitPlan", 8) == 0)));

				if (q > end)
					q = end;
				if (numbers && !named)
					appendStringInfo(&buf, "$%d", next++);
				else
					appendBinaryStringInfo(&buf, p, q - p);
				p = q;
			}
			else
			{
				if (*p != ' ')
					prevword = NULL;
				appendStringInfoChar(&buf, *p);
				p++;
			}
		}
		if (*end == '\n')
		{
			appendStringInfoChar(&buf, '\n');
			end++;
		}
		line = end;
	}
	return buf.data;
}

/*
 * names_object
 *		Is the word that ends right before "pos" (skipping spaces) one that
 *		names a kind of object?
 */
static bool
names_object(const char *msg, const char *pos)
{
	const char *e = pos;
	const char *s;
	int			len;
	int			i;

	while (e > msg && e[-1] == ' ')
		e--;
	s = e;
	while (s > msg && ((s[-1] >= 'a' && s[-1] <= 'z') ||
					   (s[-1] >= 'A' && s[-1] <= 'Z')))
		s--;
	len = e - s;
	if (len == 0)
		return false;
	for (i = 0; object_words[i]; i++)
		if ((int) strlen(object_words[i]) == len &&
			pg_strncasecmp(object_words[i], s, len) == 0)
			return true;
	return false;
}

/*
 * pfg_mask_error_message
 *		Write into "out" (outsize bytes) the message with its values as $n
 *		(see the file header); returns out.  Allocates nothing and never
 *		raises an error: it runs inside error reporting.  A message longer
 *		than the buffer is cut (at a character boundary: a mask is never cut
 *		in the middle, so no value leaks half-masked).
 */
const char *
pfg_mask_error_message(const char *msg, char *out, int outsize)
{
	const char *p = msg;
	int			o = 0;
	int			next = 1;

	if (outsize <= 0)
		return out;
#define EMIT_BYTES(src, n) \
	do { \
		int			n_ = (n); \
		if (o + n_ >= outsize) \
			goto full; \
		memcpy(out + o, (src), n_); \
		o += n_; \
	} while (0)

	while (*p)
	{
		if (*p == '\'' || (*p == '"' && !names_object(msg, p)))
		{
			char		tmp[16];

			snprintf(tmp, sizeof(tmp), "$%d", next++);
			EMIT_BYTES(tmp, (int) strlen(tmp));
			p = quoted_end(p, false);
		}
		else if (*p == '"')
		{
			const char *q = quoted_end(p, false);

			EMIT_BYTES(p, q - p);
			p = q;
		}
		else if (is_ident_char(*p) && !is_digit(*p))
		{
			const char *q = p;

			while (*q && is_ident_char(*q))
				q++;
			EMIT_BYTES(p, q - p);
			p = q;
		}
		else if (is_digit(*p))
		{
			char		tmp[16];

			snprintf(tmp, sizeof(tmp), "$%d", next++);
			EMIT_BYTES(tmp, (int) strlen(tmp));
			p = number_end(p);
		}
		else
		{
			EMIT_BYTES(p, 1);
			p++;
		}
	}
full:
	out[o] = '\0';
#undef EMIT_BYTES
	return out;
}
