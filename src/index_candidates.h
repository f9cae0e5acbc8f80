/*-------------------------------------------------------------------------
 *
 * index_candidates.h
 *		Candidate indexes for a statement, proven with hypothetical indexes.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_candidates.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_INDEX_CANDIDATES_H
#define PFG_INDEX_CANDIDATES_H

#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

#include "hypo_index.h"

/* A candidate must lower the estimated total cost by this fraction. */
#define PFG_MIN_IMPROVEMENT		0.30

/* Flags of pfg_index_analyse */
#define PFG_ANALYSE_STRICT		0x01	/* perfguard.advise(): documented errors */
#define PFG_ANALYSE_CHECK_PERMS 0x02	/* skip statements the caller cannot run */
#define PFG_ANALYSE_FINDINGS	0x04	/* describe the plan findings too */

/*
 * The proven best index for one table of one statement: one candidate, or
 * the indexes of an OR planned together (a BitmapOr).
 */
typedef struct provenIndex
{
	int			ncand;
	pfgCandidate cand[PFG_HYPO_MAX_SET];
	Oid			relid;			/* the table (a partitioned one: its parent) */
	int			nparts;			/* partitions scanned, 0 for a plain table */
	double		cost_before;
	double		cost_after;
	double		reltuples;		/* the planner's estimate of its rows */
	double		plan_rows;		/* rows its scan keeps, estimated */
	char	   *scan_desc;		/* "Seq Scan on t filters on a =, b >" */
} provenIndex;

/* A plan finding for perfguard.advise(). */
typedef struct planFinding
{
	const char *kind;
	char	   *relation;
	char	   *detail;
} planFinding;

/* What the analysis of one statement yields. */
typedef struct stmtAnalysis
{
	double		cost_before;
	List	   *proven;			/* provenIndex * */
	List	   *findings;		/* planFinding * (only when asked) */
	List	   *tried;			/* char *: tables where nothing helped */
} stmtAnalysis;

extern Query *pfg_index_parse(const char *text, bool strict,
							  ParamListInfo params);
extern void pfg_index_analyse(const char *text, ParamListInfo params,
							  int flags, stmtAnalysis *out);

#endif							/* PFG_INDEX_CANDIDATES_H */
