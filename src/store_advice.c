/*-------------------------------------------------------------------------
 *
 * store_advice.c
 *		The remembered 'missing' index advice: every advice that
 *		perfguard.index_advice gives is kept here (PFG_ADVICE_MAX entries)
 *		with a snapshot of its statements' cumulative calls and time, so
 *		that once the index exists the report can show what it changed
 *		(index_advice.c does that).  Saved at a clean shutdown like the
 *		statistics (PFG_ADVICE_FILE, through persist.c).
 *
 * pfgIndexKey, the key of an advised index, and its comparisons live here
 * too: the execution evidence (store_evidence.c) keeps the same keys.
 *
 * Lock protocol: one LWLock (tranche "perfguard_advice"), exclusive to
 * insert or update an entry, shared to copy the table out.  Only copies
 * happen under it.  Everything here is report-time: nothing on the hot
 * path touches this table.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_advice.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "persist.h"
#include "store_advice.h"

#define PFG_ADVICE_FILE			"pg_stat/perfguard_advice.stat"
#define PFG_ADVICE_MAGIC		0x50464141	/* "PFAA" */
#define PFG_ADVICE_FORMAT		2	/* 2: expression columns, operator classes */

typedef struct pfgAdviceShared
{
	LWLock	   *lock;
	pfgAdviceEntry entries[PFG_ADVICE_MAX];
} pfgAdviceShared;

typedef struct pfgAdviceFileHeader
{
	pfgFileStamp stamp;			/* must be first */
	uint32		entrysize;
	uint32		count;
} pfgAdviceFileHeader;

static pfgAdviceShared *advice_shared = NULL;

Size
pfg_advice_shmem_size(void)
{
	return MAXALIGN(sizeof(pfgAdviceShared));
}

/*
 * pfg_advice_shmem_attach
 *		Create or attach to the advice table.  Called by store.c with
 *		AddinShmemInitLock held.
 */
void
pfg_advice_shmem_attach(LWLock *lock)
{
	bool		found;

	advice_shared = ShmemInitStruct("perfguard_advice",
									sizeof(pfgAdviceShared), &found);
	if (!found)
	{
		memset(advice_shared, 0, sizeof(pfgAdviceShared));
		advice_shared->lock = lock;
	}
}

/*
 * pfg_advice_dump
 *		Write the used entries to PFG_ADVICE_FILE.  Called in the postmaster
 *		at shutdown; errors are reported at LOG.
 */
void
pfg_advice_dump(void)
{
	const char *tmpfile = PFG_ADVICE_FILE ".tmp";
	FILE	   *file;
	pfgAdviceFileHeader hdr;
	int			i;

	if (advice_shared == NULL)
		return;
	file = pfg_persist_begin_write(tmpfile);
	if (file == NULL)
		goto error;
	memset(&hdr, 0, sizeof(hdr));
	pfg_persist_stamp(&hdr.stamp, PFG_ADVICE_MAGIC, PFG_ADVICE_FORMAT);
	hdr.entrysize = sizeof(pfgAdviceEntry);
	for (i = 0; i < PFG_ADVICE_MAX; i++)
		if (advice_shared->entries[i].used)
			hdr.count++;
	if (fwrite(&hdr, sizeof(hdr), 1, file) != 1)
		goto error;
	for (i = 0; i < PFG_ADVICE_MAX; i++)
	{
		if (!advice_shared->entries[i].used)
			continue;
		if (fwrite(&advice_shared->entries[i], sizeof(pfgAdviceEntry), 1,
				   file) != 1)
			goto error;
	}
	pfg_persist_end_write(file, tmpfile, PFG_ADVICE_FILE, true);
	return;

error:
	pfg_persist_end_write(file, tmpfile, PFG_ADVICE_FILE, false);
}

/*
 * pfg_advice_load
 *		Read PFG_ADVICE_FILE into the fresh table and unlink it, so that a
 *		crash never brings back stale advice.  A bad file gives a WARNING
 *		and an empty table.
 */
void
pfg_advice_load(void)
{
	FILE	   *file = pfg_persist_begin_read(PFG_ADVICE_FILE);
	pfgAdviceFileHeader hdr;
	const char *why = NULL;
	uint32		n;

	if (file == NULL)
		return;
	if (fread(&hdr, sizeof(hdr), 1, file) != 1)
		why = "file is truncated";
	else if ((why = pfg_persist_check(&hdr.stamp, PFG_ADVICE_MAGIC,
									  PFG_ADVICE_FORMAT,
									  "file is not a perfguard advice file")) != NULL)
		;
	else if (hdr.entrysize != sizeof(pfgAdviceEntry))
		why = "file was written by an incompatible version";
	else if (hdr.count > PFG_ADVICE_MAX)
		why = "file has too many entries";
	for (n = 0; why == NULL && n < hdr.count; n++)
	{
		pfgAdviceEntry *e = &advice_shared->entries[n];

		if (fread(e, sizeof(pfgAdviceEntry), 1, file) != 1)
			why = "file is truncated";
		else if (!e->used || e->key.ncols < 1 ||
				 e->key.ncols > PFG_INDEX_MAX_COLS ||
				 e->nq < 0 || e->nq > PFG_ADVICE_QIDS)
			why = "file has an invalid entry";
	}
	if (why == NULL)
		why = pfg_persist_check_end(file);
	if (why != NULL)
		memset(advice_shared->entries, 0, sizeof(advice_shared->entries));
	pfg_persist_end_read(file, PFG_ADVICE_FILE, "advice file", why);
}

/*
 * pfg_index_key_equal
 *		Same table, same key columns (expressions, operator classes and
 *		directions included)?
 */
bool
pfg_index_key_equal(const pfgIndexKey *a, const pfgIndexKey *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols != b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i] ||
			a->exprfunc[i] != b->exprfunc[i] || a->opclass[i] != b->opclass[i])
			return false;
	return true;
}

/*
 * pfg_index_key_is_prefix
 *		Is a's key a strict leading prefix of b's?
 */
bool
pfg_index_key_is_prefix(const pfgIndexKey *a, const pfgIndexKey *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols >= b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i] ||
			a->exprfunc[i] != b->exprfunc[i] || a->opclass[i] != b->opclass[i])
			return false;
	return true;
}

static bool
advice_same_key(const pfgAdviceEntry *e, Oid dbid, const pfgIndexKey *key)
{
	return e->used && e->dbid == dbid && pfg_index_key_equal(&e->key, key);
}

/*
 * pfg_advice_remember
 *		Store (or refresh) the advice "ne".  An entry with the same key
 *		(database, table, columns and directions) is replaced; otherwise a
 *		free slot, else the oldest advice not applied (or else the oldest
 *		applied one) makes room.
 */
void
pfg_advice_remember(const pfgAdviceEntry *ne)
{
	int			i,
				slot = -1,
				victim = -1;

	if (advice_shared != NULL)
	{
		LWLockAcquire(advice_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < PFG_ADVICE_MAX; i++)
		{
			pfgAdviceEntry *e = &advice_shared->entries[i];

			if (advice_same_key(e, ne->dbid, &ne->key))
			{
				slot = i;
				break;
			}
			if (!e->used)
			{
				if (victim < 0 || advice_shared->entries[victim].used)
					victim = i;
			}
			else if (victim < 0 ||
					 (advice_shared->entries[victim].used &&
					  (advice_shared->entries[victim].applied > e->applied ||
					   (advice_shared->entries[victim].applied == e->applied &&
						e->advised_at < advice_shared->entries[victim].advised_at))))
				victim = i;
		}
		if (slot < 0)
			slot = victim;
		if (slot >= 0)
			advice_shared->entries[slot] = *ne;
		LWLockRelease(advice_shared->lock);
	}
}

/*
 * pfg_advice_copy
 *		A palloc'd copy of the remembered advice of database "dbid"; returns
 *		how many.
 */
int
pfg_advice_copy(Oid dbid, pfgAdviceEntry **out)
{
	pfgAdviceEntry *copy = palloc(sizeof(pfgAdviceEntry) * PFG_ADVICE_MAX);
	int			n = 0;
	int			i;

	if (advice_shared != NULL)
	{
		LWLockAcquire(advice_shared->lock, LW_SHARED);
		for (i = 0; i < PFG_ADVICE_MAX; i++)
			if (advice_shared->entries[i].used &&
				advice_shared->entries[i].dbid == dbid)
				copy[n++] = advice_shared->entries[i];
		LWLockRelease(advice_shared->lock);
	}
	*out = copy;
	return n;
}

/*
 * pfg_advice_set_applied
 *		Bring the remembered advice with e's key up to date: forget it when
 *		its table is "gone", mark it applied when "index" (a valid index that
 *		serves it) is given, and back to plain advice when not.
 */
void
pfg_advice_set_applied(const pfgAdviceEntry *e, bool gone, Oid index)
{
	int			j;

	if (advice_shared == NULL)
		return;
	LWLockAcquire(advice_shared->lock, LW_EXCLUSIVE);
	for (j = 0; j < PFG_ADVICE_MAX; j++)
	{
		pfgAdviceEntry *se = &advice_shared->entries[j];

		if (!advice_same_key(se, e->dbid, &e->key))
			continue;
		if (gone)
			se->used = false;
		else if (OidIsValid(index))
		{
			if (!se->applied)
				se->applied_at = GetCurrentTimestamp();
			se->applied = true;
			se->applied_index = index;
		}
		else
		{
			se->applied = false;
			se->applied_index = InvalidOid;
		}
		break;
	}
	LWLockRelease(advice_shared->lock);
}
