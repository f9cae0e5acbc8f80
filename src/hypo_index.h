/*-------------------------------------------------------------------------
 *
 * hypo_index.h
 *		Hypothetical btree indexes and planning with them.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/hypo_index.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_HYPO_INDEX_H
#define PFG_HYPO_INDEX_H

#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "storage/block.h"
#include "utils/relcache.h"

#include "perfguard.h"
#include "store_advice.h"

/* One candidate btree index; catalog facts are filled when it is built. */
typedef struct pfgCandidate
{
	Oid			relid;
	int			ncols;
	AttrNumber	attnos[PFG_INDEX_MAX_COLS];
	bool		desc[PFG_INDEX_MAX_COLS];
	bool		nulls_first[PFG_INDEX_MAX_COLS];
	Oid			atttype[PFG_INDEX_MAX_COLS];
	int32		atttypmod[PFG_INDEX_MAX_COLS];
	Oid			attcoll[PFG_INDEX_MAX_COLS];
	Oid			opfamily[PFG_INDEX_MAX_COLS];
	Oid			opcintype[PFG_INDEX_MAX_COLS];
	int32		keywidth;		/* sum of the key columns' average widths */
	BlockNumber est_pages;		/* set by the hook when planned */
} pfgCandidate;

extern void pfg_hypo_get_relation_info(PlannerInfo *root, Oid relid,
									   bool inhparent, RelOptInfo *rel);
extern PlannedStmt *pfg_hypo_plan(Query *q, const char *text,
								  pfgCandidate *cand);
extern void pfg_hypo_estimate_size(double tuples, int32 keywidth,
								   BlockNumber *pages, int *height);
extern Oid	pfg_hypo_covering_index(Relation rel, int ncols,
									const AttrNumber *attnos);
extern bool pfg_hypo_same_columns(const pfgCandidate *a, const pfgCandidate *b);
extern bool pfg_hypo_is_prefix(const pfgCandidate *a, const pfgCandidate *b);
extern char *pfg_qualified_rel(Oid relid);
extern char *pfg_hypo_columns_sql(const pfgCandidate *c);
extern char *pfg_hypo_ddl(const pfgCandidate *c);

#endif							/* PFG_HYPO_INDEX_H */
