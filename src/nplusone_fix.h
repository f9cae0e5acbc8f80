/*-------------------------------------------------------------------------
 *
 * nplusone_fix.h
 *		The fix of an N+1 suspect or a repeating sequence, derived from the
 *		foreign keys (or inferred from column names), in the vocabulary of
 *		the application's framework.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/nplusone_fix.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_NPLUSONE_FIX_H
#define PFG_NPLUSONE_FIX_H

#include "perfguard.h"
#include "store.h"

extern char *pfg_fix_derive(const char *parent_query,
							const char *const *queries, int nqueries,
							int framework, pfgFix *fix);
extern void pfg_n_plus_one_fix(const char *parent_query, const char *query,
							   char **table_name, char **column_name,
							   char **suggestion);

#endif							/* PFG_NPLUSONE_FIX_H */
