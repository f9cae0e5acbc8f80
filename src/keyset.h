/*-------------------------------------------------------------------------
 *
 * keyset.h
 *		Keyset ("seek") pagination: the SQL functions keyset_predicate,
 *		keyset_page and keyset_index, and the OFFSET -> keyset suggestion of
 *		perfguard.offset_pagination.  They are reached from SQL only; this
 *		header declares their C symbols.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/keyset.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_KEYSET_H
#define PFG_KEYSET_H

#include "fmgr.h"

#include "perfguard.h"

extern PGDLLEXPORT Datum perfguard_keyset_predicate(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum perfguard_keyset_page(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum perfguard_keyset_index(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum perfguard_keyset_suggestion(PG_FUNCTION_ARGS);

#endif							/* PFG_KEYSET_H */
