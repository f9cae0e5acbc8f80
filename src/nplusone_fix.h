/*-------------------------------------------------------------------------
 *
 * nplusone_fix.h
 *		The fix of an N+1 suspect, derived from the foreign keys.
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

extern void pfg_n_plus_one_fix(const char *parent_query, const char *query,
							   char **table_name, char **column_name,
							   char **suggestion);

#endif							/* PFG_NPLUSONE_FIX_H */
