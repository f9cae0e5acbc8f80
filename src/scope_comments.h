/*-------------------------------------------------------------------------
 *
 * scope_comments.h
 *		The sqlcommenter comments of the last statements, parsed once
 *		(scope_comments.c), and the inline check of the common case: a
 *		statement that ends with the same comment as the last one.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope_comments.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_SCOPE_COMMENTS_H
#define PFG_SCOPE_COMMENTS_H

#include "perfguard.h"

#define PFG_COMMENT_LEN			512

/* A parsed comment (see scope_comments.c). */
typedef struct pfgComment
{
	int			len;			/* -1: empty, or too long to keep */
	int			span_off;		/* span id position in text, or -1 */
	bool		tagged;			/* it carries scope tags */
	int			flags;			/* PFG_TAG_* */
	int			framework;		/* pfgFramework of the framework tag */
	uint64		keyhash;		/* hash of the scope key */
	char		key[PFG_COMMENT_LEN];	/* the scope key (pfg_parse_tags) */
	char		label[PFG_ROUTE_LEN];
	char		text[PFG_COMMENT_LEN];
} pfgComment;

extern PGDLLIMPORT pfgComment *pfg_last_comment;

extern const pfgComment *pfg_comment_parse(const char *src, int loc, int len);

/*
 * pfg_comment_is_cached
 *		Does the statement s[0, len) end with exactly the last comment seen?
 *		Checks the delimiters where they must be and compares the content: no
 *		backward scan, which matters because ORMs send the same comment on
 *		every statement of a request.  OpenTelemetry puts the current span in
 *		traceparent, so the comment may change on every statement of a
 *		request while the request (the trace id) does not: then all but the
 *		16 hex digits of the span id are compared.
 */
static inline bool
pfg_comment_is_cached(const char *s, int len)
{
	const pfgComment *c = pfg_last_comment;
	int			end = len;
	int			start;
	uint64		a,
				b,
				x,
				y;

	if (c->len < 0)
		return false;
	while (end > 0 && s[end - 1] != '/' &&
		   (s[end - 1] == ' ' || s[end - 1] == '\n' || s[end - 1] == ';' ||
			s[end - 1] == '\t' || s[end - 1] == '\r'))
		end--;
	start = end - 2 - c->len;
	if (start < 2 || s[end - 1] != '/' || s[end - 2] != '*' ||
		s[start - 2] != '/' || s[start - 1] != '*')
		return false;
	s += start;
	if (c->span_off < 0)
		return memcmp(s, c->text, c->len) == 0;
	memcpy(&a, s + c->span_off, 8);
	memcpy(&b, s + c->span_off + 8, 8);
	memcpy(&x, c->text + c->span_off, 8);
	memcpy(&y, c->text + c->span_off + 8, 8);
	if (a == x && b == y)
		return memcmp(s, c->text, c->len) == 0;	/* the same span */
	return memcmp(s, c->text, c->span_off) == 0 &&
		memcmp(s + c->span_off + 16, c->text + c->span_off + 16,
			   c->len - c->span_off - 16) == 0;
}

/*
 * pfg_comment_lookup
 *		The parsed trailing comment of the statement src[loc, loc + len), or
 *		NULL when it has none.
 */
static inline const pfgComment *
pfg_comment_lookup(const char *src, int loc, int len)
{
	if (pfg_comment_is_cached(src + loc, len))
		return pfg_last_comment;
	return pfg_comment_parse(src, loc, len);
}

#endif							/* PFG_SCOPE_COMMENTS_H */
