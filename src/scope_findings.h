/*-------------------------------------------------------------------------
 *
 * scope_findings.h
 *		Flushing a request's findings to the store; findings kept by guards
 *		at 'collect'.
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

#include "perfguard.h"
#include "store_requests.h"

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

extern void pfg_scope_flush_state(pfgReqState *st, const char *example,
								  uint64 example_qid);
extern void pfg_collect_add(int kind, uint64 queryid, const char *label,
							int64 count, int32 distinct, const char *query,
							const char *parent, const char *fix);
extern void pfg_collect_update(int kind, uint64 queryid, const char *label,
							   int64 count, int32 distinct);
extern int	pfg_scope_collected(const pfgCollected **out, int *lost);
extern void pfg_scope_clear_collected(void);
extern void pfg_scope_check_collected(void);

#endif							/* PFG_SCOPE_FINDINGS_H */
