/*-------------------------------------------------------------------------
 *
 * report.h
 *		Report-time helpers shared by the views, the fixes, the index
 *		advisor and the keyset suggestion: the preload check, who may see
 *		query text, and running catalog-reading code in a guarded
 *		subtransaction.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/report.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_REPORT_H
#define PFG_REPORT_H

#include "perfguard.h"

extern bool pfg_report_self;

/* Copies of table entries, collected while their partition locks are held. */
typedef struct pfgCollect
{
	char	   *data;
	Size		entrysize;
	int			n;
	int			alloc;
} pfgCollect;

extern void pfg_report_collect_cb(const void *entry, void *arg);
extern void pfg_check_preloaded(void);
extern bool pfg_report_sees_all(void);
extern bool pfg_report_may_see(Oid userid);
extern bool pfg_report_guarded(void (*fn) (void *), void *arg,
							   MemoryContext keepcxt);
extern bool pfg_report_guarded_quiet(void (*fn) (void *), void *arg,
									 MemoryContext cxt);

#endif							/* PFG_REPORT_H */
