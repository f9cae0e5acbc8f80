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

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

#include "hypo_index.h"

/* A candidate must lower the estimated total cost by this fraction. */
#define PFG_MIN_IMPROVEMENT		0.30

/* The proven best candidate for one table of one statement. */
typedef struct provenIndex
{
	pfgCandidate cand;
	double		cost_before;
	double		cost_after;
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

extern Query *pfg_index_analyse_one(const char *text, bool strict);
extern void pfg_index_analyse(const char *text, bool strict, bool check_perms,
							  bool want_findings, stmtAnalysis *out);

#endif							/* PFG_INDEX_CANDIDATES_H */
