/*-------------------------------------------------------------------------
 *
 * fix_text.h
 *		The suggestion text of a fix, from its parts, merged over the
 *		relations of one loop, in each framework's vocabulary.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/fix_text.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_FIX_TEXT_H
#define PFG_FIX_TEXT_H

#include "fmgr.h"
#include "nodes/pg_list.h"

#include "perfguard.h"
#include "store.h"

extern void pfg_fix_items_append(char *buf, int size, const char *part,
								 const char *sep);
extern char *pfg_fix_compose(int framework, const pfgFix *fix);
extern List *pfg_fix_text_array_arg(FunctionCallInfo fcinfo, int argno);

/* merged fixes of several findings (one loop) */
typedef struct pfgFixMerge pfgFixMerge;
extern pfgFixMerge *pfg_fix_merge_start(void);
extern void pfg_fix_merge_add(pfgFixMerge *m, const pfgFix *fix);
extern char *pfg_fix_merge_compose(pfgFixMerge *m, int framework,
								   bool inferred, const char *column);

#endif							/* PFG_FIX_TEXT_H */
