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

#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "storage/block.h"
#include "utils/relcache.h"

#include "perfguard.h"
#include "store_advice.h"

/* Most hypothetical indexes planned together (the indexes of an OR). */
#define PFG_HYPO_MAX_SET		4

/*
 * One candidate btree index: its key (what shared memory keeps), and the
 * catalog facts of each key column, filled by pfg_hypo_fill.
 */
typedef struct pfgCandidate
{
	pfgIndexKey key;
	bool		partitioned;	/* key.relid is a partitioned table */
	Oid			atttype[PFG_INDEX_MAX_COLS];	/* of the column or expression */
	int32		atttypmod[PFG_INDEX_MAX_COLS];
	Oid			attcoll[PFG_INDEX_MAX_COLS];
	Oid			opfamily[PFG_INDEX_MAX_COLS];
	Oid			opcintype[PFG_INDEX_MAX_COLS];
	int32		keywidth;		/* sum of the key columns' average widths */
	BlockNumber est_pages;		/* set by the hook when planned */
} pfgCandidate;

typedef void (*pfg_hypo_install_fn) (void);
extern void pfg_hypo_set_install_fn(pfg_hypo_install_fn fn);
extern void pfg_hypo_get_relation_info(PlannerInfo *root, Oid relid,
									   bool inhparent, RelOptInfo *rel);
extern bool pfg_hypo_fill(pfgCandidate *c);
extern PlannedStmt *pfg_hypo_plan(Query *q, const char *text,
								  pfgCandidate **cands, int ncands,
								  ParamListInfo params);
extern double pfg_hypo_plan_cost(Query *q, const char *text,
								 pfgCandidate **cands, int ncands,
								 ParamListInfo params);
extern void pfg_hypo_estimate_size(double tuples, int32 keywidth,
								   BlockNumber *pages, int *height);
extern double pfg_hypo_rel_tuples(Oid relid);
extern Oid	pfg_hypo_covering_index(Relation rel, const pfgIndexKey *key);
extern char *pfg_qualified_rel(Oid relid);
extern char *pfg_hypo_column_sql(const pfgIndexKey *key, int col);
extern char *pfg_hypo_columns_sql(const pfgIndexKey *key);
extern char *pfg_hypo_ddl(const pfgIndexKey *key);
extern bool pfg_hypo_is_partitioned(Oid relid);

#endif							/* PFG_HYPO_INDEX_H */
