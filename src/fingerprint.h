/*-------------------------------------------------------------------------
 *
 * fingerprint.h
 *		Statement identity: IN-list folding on top of the core query id,
 *		hashes of a statement's parameter values, the normalised text.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/fingerprint.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_FINGERPRINT_H
#define PFG_FINGERPRINT_H

#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "utils/queryjumble.h"

#include "perfguard.h"

extern uint64 pfg_fold_inlists(Query *query, const char *src,
							   JumbleState *jstate);
extern uint64 pfg_hash_constants(const char *src, JumbleState *jstate);
extern uint64 pfg_hash_params(ParamListInfo params);
extern char *pfg_normalize_query(const char *src, int loc, int *len);
extern char *pfg_format_params(const char *src, int loc, int len,
							   ParamListInfo params);
extern void pfg_statement_text_slow(const char *src, int *loc, int *len);

/* See pfg_statement_text_slow: the common case (a range that starts with
 * no white space) inline. */
static inline void
pfg_statement_text(const char *src, int *loc, int *len)
{
	char		c;

	if (*loc < 0)
	{
		pfg_statement_text_slow(src, loc, len);
		return;
	}
	if (*len <= 0)
		*len = strlen(src + *loc);	/* the last statement of the string */
	if (*len > 0 && (c = src[*loc]) != ' ' && c != '\n' &&
		c != '\t' && c != '\r' && c != '\f' && c != '\v')
		return;
	pfg_statement_text_slow(src, loc, len);
}

#endif							/* PFG_FINGERPRINT_H */
