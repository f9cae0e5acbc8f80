/*-------------------------------------------------------------------------
 *
 * store_evidence.h
 *		Index evidence from sampled executions: for a fingerprint whose plan
 *		was sampled, the outcome of proving index candidates with the values
 *		that execution had (never the values).  Part of the store layer:
 *		store.c sizes and attaches it.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_evidence.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_EVIDENCE_H
#define PFG_STORE_EVIDENCE_H

#include "datatype/timestamp.h"
#include "storage/lwlock.h"

#include "perfguard.h"
#include "store_advice.h"

/* Fingerprints with evidence, and proven indexes kept per fingerprint. */
#define PFG_EVIDENCE_MAX		512
#define PFG_EVIDENCE_ITEMS		4
#define PFG_EVIDENCE_DESC_LEN	160

/*
 * One proven index of a fingerprint's evidence.  Items with the same "set"
 * were proven together (the indexes of an OR, planned as a BitmapOr).
 */
typedef struct pfgEvidenceItem
{
	pfgIndexKey key;
	int16		set;
	int16		nparts;			/* partitions of a partitioned table */
	double		cost_after;		/* the statement's cost with the index(es) */
	double		reltuples;		/* the planner's estimate of the table's rows */
	double		selectivity;	/* rows the scan kept / reltuples */
	char		scan_desc[PFG_EVIDENCE_DESC_LEN];	/* names and operators only */
} pfgEvidenceItem;

/*
 * The evidence of one fingerprint: proven at "proven_at" (0 while the
 * first proof runs, or after it failed), with the statement's cost
 * without any new index.  No index (nitems = 0) is evidence too: none
 * helped the sampled execution.
 */
typedef struct pfgEvidenceEntry
{
	bool		used;
	bool		observed;		/* selectivity from an instrumented execution */
	int16		nitems;
	Oid			dbid;
	uint64		queryid;
	TimestampTz proven_at;
	TimestampTz claimed_at;		/* when a backend started proving */
	double		cost_before;
	pfgEvidenceItem items[PFG_EVIDENCE_ITEMS];
} pfgEvidenceEntry;

extern Size pfg_evidence_shmem_size(void);
extern void pfg_evidence_shmem_attach(LWLock *lock);
extern bool pfg_evidence_ready(void);
extern bool pfg_evidence_claim(Oid dbid, uint64 queryid, bool observed,
							   TimestampTz now, int64 window_us);
extern void pfg_evidence_store(const pfgEvidenceEntry *ne);
extern int	pfg_evidence_copy(Oid dbid, pfgEvidenceEntry **out);
extern void pfg_evidence_reset(void);

#endif							/* PFG_STORE_EVIDENCE_H */
