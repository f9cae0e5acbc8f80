/*-------------------------------------------------------------------------
 *
 * scope_findings.h
 *		Flushing a request's findings to the store (with an example parameter
 *		set, and the fixes of the new ones); findings kept by guards at
 *		'collect'.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope_findings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_SCOPE_FINDINGS_H
#define PFG_SCOPE_FINDINGS_H

#include "nodes/params.h"

#include "perfguard.h"
#include "store.h"
#include "store_requests.h"

/*
 * Derives the fix of an N+1 (one query) or of a repeating sequence (its
 * member queries) from the normalised texts of the parent and the
 * children, in the vocabulary of "framework" (pfgFramework): fills *fix and
 * returns the suggestion text (palloc'd, never NULL).  Reads the catalogs in
 * a guarded subtransaction: never raises an error, except a query cancel.
 * perfguard.c registers nplusone_fix.c's with the scope (pfg_scope_set_fix_fn).
 */
typedef char *(*pfg_fix_fn) (const char *parent_query,
							 const char *const *queries, int nqueries,
							 int framework, pfgFix *fix);

/* A finding a guard at 'collect' kept. */
typedef struct pfgCollected
{
	int			kind;			/* pfgFindingKind; 0 = too many queries */
	uint64		queryid;
	char		label[PFG_ROUTE_LEN];
	int64		count;			/* repeats, executions, or queries */
	int32		distinct;		/* distinct parameter sets (N+1) */
	char	   *query;
	char	   *parent;
	char	   *fix;
} pfgCollected;

extern void pfg_scope_flush_state(pfgReqState *st, bool with_example);
extern void pfg_scope_capture_example(uint64 queryid, const char *src,
									  int loc, int len, ParamListInfo params);
extern void pfg_scope_forget_example(void);
extern void pfg_collect_add(int kind, uint64 queryid, const char *label,
							int64 count, int32 distinct, const char *query,
							const char *parent, const char *fix);
extern void pfg_collect_update(int kind, uint64 queryid, const char *label,
							   int64 count, int32 distinct);
extern int	pfg_scope_collected(const pfgCollected **out, int *lost);
extern void pfg_scope_clear_collected(void);
extern void pfg_scope_check_collected(void);

/* fixes of new findings, derived where a subtransaction may start */
extern int	pfg_pending_fixes;
extern void pfg_scope_drain_fixes(pfg_fix_fn fn);

#endif							/* PFG_SCOPE_FINDINGS_H */
