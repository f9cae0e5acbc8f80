/*-------------------------------------------------------------------------
 *
 * store_evidence.c
 *		Index evidence from sampled executions (PFG_EVIDENCE_MAX entries,
 *		one per fingerprint): what proving index candidates with the values
 *		of a sampled execution found (index_evidence.c does the proving).
 *		An entry holds index keys, costs, a selectivity and a description
 *		made of names and operators: never a parameter value.
 *
 * A fingerprint is proven at most once per perfguard.window, plus once
 * more when the first proof had only estimates and an instrumented
 * execution comes along (observed selectivity).  pfg_evidence_claim
 * decides that and marks the entry claimed, so that two backends sampling
 * the same fingerprint do not both prove it.  A full table gives the slot
 * of the entry proven (or claimed) longest ago.  Not saved across
 * restarts: evidence is as fresh as the samples.
 *
 * Lock protocol: one LWLock (tranche "perfguard_evidence"), exclusive to
 * claim, store or reset, shared to copy the table out.  Only plain copies
 * and comparisons happen under it: nothing can raise an error there.  The
 * sampling path takes it only for a sampled execution, never for an
 * unsampled one.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_evidence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"

#include "store_evidence.h"

typedef struct pfgEvidenceShared
{
	LWLock	   *lock;
	pfgEvidenceEntry entries[PFG_EVIDENCE_MAX];
} pfgEvidenceShared;

static pfgEvidenceShared *evidence_shared = NULL;

Size
pfg_evidence_shmem_size(void)
{
	return MAXALIGN(sizeof(pfgEvidenceShared));
}

/*
 * pfg_evidence_shmem_attach
 *		Create or attach to the evidence table.  Called by store.c with
 *		AddinShmemInitLock held.
 */
void
pfg_evidence_shmem_attach(LWLock *lock)
{
	bool		found;

	evidence_shared = ShmemInitStruct("perfguard_evidence",
									  sizeof(pfgEvidenceShared), &found);
	if (!found)
	{
		memset(evidence_shared, 0, sizeof(pfgEvidenceShared));
		evidence_shared->lock = lock;
	}
}

bool
pfg_evidence_ready(void)
{
	return evidence_shared != NULL;
}

/* Latest activity on an entry: for the choice of a victim. */
static inline TimestampTz
entry_age_key(const pfgEvidenceEntry *e)
{
	return Max(e->proven_at, e->claimed_at);
}

/*
 * find_slot
 *		The entry of (dbid, queryid), else a free one, else the one proven
 *		or claimed longest ago; *existing says which.  Lock held exclusively.
 */
static pfgEvidenceEntry *
find_slot(Oid dbid, uint64 queryid, bool *existing)
{
	pfgEvidenceEntry *free_e = NULL;
	pfgEvidenceEntry *oldest = NULL;
	int			i;

	for (i = 0; i < PFG_EVIDENCE_MAX; i++)
	{
		pfgEvidenceEntry *e = &evidence_shared->entries[i];

		if (!e->used)
		{
			if (free_e == NULL)
				free_e = e;
			continue;
		}
		if (e->dbid == dbid && e->queryid == queryid)
		{
			*existing = true;
			return e;
		}
		if (oldest == NULL || entry_age_key(e) < entry_age_key(oldest))
			oldest = e;
	}
	*existing = false;
	return free_e ? free_e : oldest;
}

/*
 * pfg_evidence_claim
 *		Should this backend prove the fingerprint now?  Yes when it has no
 *		evidence, when its evidence is older than one window, or when it has
 *		only estimates and this execution was instrumented ("observed");
 *		not while another backend's claim of this window stands.  A yes
 *		marks the entry claimed (creating it, evicting the oldest entry when
 *		the table is full).  Never raises an error.
 */
bool
pfg_evidence_claim(Oid dbid, uint64 queryid, bool observed, TimestampTz now,
				   int64 window_us)
{
	pfgEvidenceEntry *e;
	bool		existing;
	bool		due = true;

	if (evidence_shared == NULL)
		return false;
	LWLockAcquire(evidence_shared->lock, LW_EXCLUSIVE);
	e = find_slot(dbid, queryid, &existing);
	if (e == NULL)
		due = false;
	else if (existing)
	{
		if (e->claimed_at > e->proven_at && now - e->claimed_at < window_us)
			due = false;		/* being proven, or its proof failed */
		else if (e->proven_at != 0 && now - e->proven_at < window_us &&
				 (e->observed || !observed))
			due = false;		/* proven in this window */
	}
	if (due)
	{
		if (!existing)
		{
			memset(e, 0, sizeof(pfgEvidenceEntry));
			e->used = true;
			e->dbid = dbid;
			e->queryid = queryid;
		}
		e->claimed_at = now;
	}
	LWLockRelease(evidence_shared->lock);
	return due;
}

/*
 * pfg_evidence_store
 *		Store the outcome of a proof (ne->proven_at set by the caller), in
 *		the fingerprint's entry, or a new slot if it was evicted meanwhile.
 */
void
pfg_evidence_store(const pfgEvidenceEntry *ne)
{
	pfgEvidenceEntry *e;
	bool		existing;

	if (evidence_shared == NULL)
		return;
	LWLockAcquire(evidence_shared->lock, LW_EXCLUSIVE);
	e = find_slot(ne->dbid, ne->queryid, &existing);
	if (e != NULL)
	{
		*e = *ne;
		e->used = true;
	}
	LWLockRelease(evidence_shared->lock);
}

/*
 * pfg_evidence_copy
 *		A palloc'd copy of the proven evidence of database "dbid"; returns
 *		how many entries.
 */
int
pfg_evidence_copy(Oid dbid, pfgEvidenceEntry **out)
{
	pfgEvidenceEntry *copy;
	int			n = 0;
	int			i;

	copy = palloc(sizeof(pfgEvidenceEntry) * PFG_EVIDENCE_MAX);
	if (evidence_shared != NULL)
	{
		LWLockAcquire(evidence_shared->lock, LW_SHARED);
		for (i = 0; i < PFG_EVIDENCE_MAX; i++)
		{
			pfgEvidenceEntry *e = &evidence_shared->entries[i];

			if (e->used && e->dbid == dbid && e->proven_at != 0)
				copy[n++] = *e;
		}
		LWLockRelease(evidence_shared->lock);
	}
	*out = copy;
	return n;
}

/*
 * pfg_evidence_reset
 *		Forget all evidence (perfguard.reset()).
 */
void
pfg_evidence_reset(void)
{
	if (evidence_shared == NULL)
		return;
	LWLockAcquire(evidence_shared->lock, LW_EXCLUSIVE);
	memset(evidence_shared->entries, 0, sizeof(evidence_shared->entries));
	LWLockRelease(evidence_shared->lock);
}
