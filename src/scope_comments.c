/*-------------------------------------------------------------------------
 *
 * scope_comments.c
 *		The sqlcommenter comments of the last statements a backend ran,
 *		parsed once: what a statement's comment says about its request (the
 *		scope key, the label, the flags, the framework) without parsing it
 *		again when it repeats.
 *
 * ORMs send the same comment on every statement of a request: the inline
 * check of scope_comments.h recognises it with one memcmp.  A backend that
 * interleaves a few requests (behind a transaction pooler) finds theirs
 * among the last PFG_COMMENT_SLOTS; the next request of an application
 * usually sends the last one's comment with another trace id, which is
 * taken as the key without parsing (comment_new_trace).  Everything here
 * runs on the hot path and allocates nothing.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope_comments.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "scope_comments.h"
#include "sqlcommenter.h"
#include "table.h"

/*
 * The last sqlcommenter comments seen, parsed: an unchanged comment costs one
 * memcmp against the last one, and a backend that interleaves a few
 * requests (behind a transaction pooler) finds theirs among the others
 * instead of parsing them again.
 */
#define PFG_COMMENT_SLOTS	4

static pfgComment comments[PFG_COMMENT_SLOTS] = {
	{.len = -1}, {.len = -1}, {.len = -1}, {.len = -1}
};
pfgComment *pfg_last_comment = &comments[0];
static int	comment_victim = 0;


/*
 * key_hash64
 *		64-bit hash of a scope key (it names an open request in shared
 *		memory, never on disk), never 0.
 */
static inline uint64
key_hash64(const char *key)
{
	uint64		h = pfg_hash64(key, strlen(key));

	return h ? h : 1;
}

/*
 * span_offset
 *		Offset of the span id inside traceparent='00-<trace id>-<span id>-..'
 *		in a comment, or -1.
 */
static int
span_offset(const char *c, int len)
{
	const char *tp = memmem(c, len, "traceparent='", 13);
	int			off;

	if (tp == NULL)
		return -1;
	off = (tp - c) + 13 + 3 + 32 + 1;	/* past "00-", the trace id, "-" */
	if (off + 16 + 1 > len || c[off - 1] != '-' || c[off + 16] != '-' ||
		c[off - 33 - 1] != '-')
		return -1;
	return off;
}

/*
 * comment_new_trace
 *		The next request of an application sends the comment of the last one
 *		with another trace id (and span id): when a kept comment equals
 *		cstart[0, clen) but for those 48 hex digits, fill slot "c" from it
 *		with the new trace id as the key, without parsing.  The trace id is
 *		taken as it is only when it is plain hex (so URL decoding would not
 *		change it), as pfg_parse_tags would.
 */
static const bool hex_digit[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1
};

static bool
comment_new_trace(pfgComment *c, const char *cstart, int clen)
{
	int			i;

	for (i = 0; i < PFG_COMMENT_SLOTS; i++)
	{
		pfgComment *k = &comments[i];
		int			tr;
		int			j;

		if (k->len != clen || k->span_off < 0 || !k->tagged)
			continue;
		tr = k->span_off - 33;	/* the trace id */
		/* its key is the trace id of this traceparent */
		if (k->key[0] != 't' || k->key[1] != ':' || k->key[34] != '\0' ||
			memcmp(k->key + 2, k->text + tr, 32) != 0)
			continue;
		if (memcmp(cstart, k->text, tr) != 0 ||
			memcmp(cstart + k->span_off + 16, k->text + k->span_off + 16,
				   clen - k->span_off - 16) != 0 ||
			cstart[k->span_off - 1] != '-')
			continue;
		for (j = 0; j < 32; j += 4)
			if (!(hex_digit[(unsigned char) cstart[tr + j]] &
				  hex_digit[(unsigned char) cstart[tr + j + 1]] &
				  hex_digit[(unsigned char) cstart[tr + j + 2]] &
				  hex_digit[(unsigned char) cstart[tr + j + 3]]))
				return false;
		if (c != k)
			memcpy(c, k, offsetof(pfgComment, text));
		memcpy(c->text, cstart, clen);
		c->key[0] = 't';
		c->key[1] = ':';
		memcpy(c->key + 2, cstart + tr, 32);
		c->key[34] = '\0';
		c->keyhash = key_hash64(c->key);
		return true;
	}
	return false;
}

/*
 * comment_slot
 *		The parsed slot of the comment cstart[0, clen): one of the slots when
 *		it equals it (but for the span id), else a slot it is parsed into.
 */
static pfgComment *
comment_slot(const char *cstart, int clen)
{
	pfgComment *c;
	int			i;

	for (i = 0; i < PFG_COMMENT_SLOTS; i++)
	{
		c = &comments[i];
		if (c->len != clen)
			continue;
		if (c->span_off < 0 ? memcmp(cstart, c->text, clen) == 0 :
			(memcmp(cstart, c->text, c->span_off) == 0 &&
			 memcmp(cstart + c->span_off + 16, c->text + c->span_off + 16,
					clen - c->span_off - 16) == 0))
			return c;
	}
	c = &comments[comment_victim];
	comment_victim = (comment_victim + 1) % PFG_COMMENT_SLOTS;
	if (comment_new_trace(c, cstart, clen))
		return c;
	c->tagged = pfg_parse_tags(cstart, clen, c->key, sizeof(c->key),
							   c->label, sizeof(c->label), &c->flags);
	c->keyhash = c->tagged ? key_hash64(c->key) : 0;
	c->framework = pfg_tag_framework(cstart, clen);
	if (clen < PFG_COMMENT_LEN)
	{
		memcpy(c->text, cstart, clen);
		c->len = clen;
		c->span_off = span_offset(c->text, clen);
	}
	else
		c->len = -1;
	return c;
}

/*
 * pfg_comment_parse
 *		The statement does not end with the last comment: find its trailing
 *		comment (NULL when none) and its slot; it becomes the last comment
 *		unless it was too long to keep.
 */
const pfgComment *
pfg_comment_parse(const char *src, int loc, int len)
{
	const char *cstart;
	int			clen;
	pfgComment *c;

	if (!pfg_trailing_comment(src, loc, len, &cstart, &clen))
		return NULL;
	c = comment_slot(cstart, clen);
	if (c->len >= 0)
		pfg_last_comment = c;
	return c;
}
