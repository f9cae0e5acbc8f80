/*-------------------------------------------------------------------------
 *
 * store_cache.c
 *		Two small report-time tables in shared memory (the segment
 *		"perfguard_cache", sized and attached by store.c):
 *		- the index advice of up to PFG_CACHE_DBS databases, each as the JSON
 *		  text of perfguard.index_advice's rows, computed in that database
 *		  (it needs its catalog) by whoever reads perfguard.findings there.
 *		  perfguard.findings reads the advice of every cached database from
 *		  here instead of planning hypothetical indexes on every read; the
 *		  current database's entry is recomputed when it is older than
 *		  perfguard.advice_refresh, when DDL or ANALYZE ran since (a global
 *		  generation that the utility hook bumps), after perfguard.reset(),
 *		  or by perfguard.refresh_advice();
 *		- when perfguard first saw each index (PFG_SEEN_MAX of them, keyed by
 *		  database and index OID): an index is advised to be dropped only
 *		  after statistics covered perfguard.unused_index_min_age since then
 *		  (PostgreSQL keeps no creation time of an index; the time perfguard
 *		  first saw it is a safe lower bound).  Saved at a clean shutdown
 *		  (PFG_SEEN_FILE, through persist.c), as the statistics are.
 *
 * Lock protocol: two LWLocks of the tranche "perfguard_cache", one per
 * table, exclusive to write and shared to copy out; only copies happen
 * under them.  Nothing here is on the hot path: the invalidation is one
 * atomic increment per DDL statement.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "persist.h"
#include "store_cache.h"

#define PFG_SEEN_FILE			"pg_stat/perfguard_seen.stat"
#define PFG_SEEN_MAGIC			0x50465345	/* "PFSE" */
#define PFG_SEEN_FORMAT			1

typedef struct pfgCacheSlot
{
	Oid			dbid;			/* InvalidOid: free */
	uint64		gen;			/* invalidation generation when computed */
	TimestampTz computed_at;
	int32		len;
	char		json[PFG_CACHE_BYTES];
} pfgCacheSlot;

typedef struct pfgCacheShared
{
	pg_atomic_uint64 gen;		/* bumped by DDL, ANALYZE and reset() */
	pfgCacheSlot slots[PFG_CACHE_DBS];
} pfgCacheShared;

typedef struct pfgSeenKey
{
	Oid			dbid;
	Oid			indexrelid;
} pfgSeenKey;

typedef struct pfgSeenEntry
{
	pfgSeenKey	key;			/* must be first */
	TimestampTz first_seen;
} pfgSeenEntry;

typedef struct pfgSeenFileHeader
{
	pfgFileStamp stamp;			/* must be first */
	uint32		entrysize;
	uint32		count;
} pfgSeenFileHeader;

/*---- local state ----*/
static pfgCacheShared *cache_shared = NULL;
static HTAB *seen_htab = NULL;
static LWLock *cache_lock = NULL;
static LWLock *seen_lock = NULL;

Size
pfg_cache_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(pfgCacheShared)),
					hash_estimate_size(PFG_SEEN_MAX, sizeof(pfgSeenEntry)));
}

/*
 * pfg_cache_shmem_attach
 *		Create or attach to both tables.  Called by store.c with
 *		AddinShmemInitLock held; "locks" is the tranche "perfguard_cache".
 */
void
pfg_cache_shmem_attach(LWLockPadded *locks)
{
	bool		found;
	HASHCTL		info;

	cache_shared = ShmemInitStruct("perfguard_cache", sizeof(pfgCacheShared),
								   &found);
	if (!found)
	{
		memset(cache_shared, 0, sizeof(pfgCacheShared));
		pg_atomic_init_u64(&cache_shared->gen, 1);
	}
	cache_lock = &locks[0].lock;
	seen_lock = &locks[1].lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pfgSeenKey);
	info.entrysize = sizeof(pfgSeenEntry);
	seen_htab = ShmemInitHash("perfguard index sightings",
							  PFG_SEEN_MAX, PFG_SEEN_MAX,
							  &info, HASH_ELEM | HASH_BLOBS);
}

/*---- cached advice ----*/

/*
 * pfg_cache_ddl_invalidates
 *		Does this utility statement change what the index advice says?
 *		Index and table DDL, and ANALYZE/VACUUM (new statistics).  A few
 *		tag comparisons, for utility statements only.
 */
bool
pfg_cache_ddl_invalidates(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_IndexStmt:
		case T_DropStmt:
		case T_AlterTableStmt:
		case T_CreateStmt:
		case T_CreateTableAsStmt:
		case T_ReindexStmt:
		case T_VacuumStmt:
		case T_RenameStmt:
		case T_AlterObjectSchemaStmt:
		case T_TruncateStmt:
			return true;
		default:
			return false;
	}
}

/*
 * pfg_cache_invalidate
 *		Every cached advice is stale from now on.  One atomic increment.
 */
void
pfg_cache_invalidate(void)
{
	if (cache_shared)
		pg_atomic_fetch_add_u64(&cache_shared->gen, 1);
}

/*
 * pfg_cache_reset
 *		Forget the cached advice (perfguard.reset()).  The index sightings
 *		are kept: they are facts about the databases, not statistics.
 */
void
pfg_cache_reset(void)
{
	int			i;

	if (cache_shared == NULL)
		return;
	LWLockAcquire(cache_lock, LW_EXCLUSIVE);
	for (i = 0; i < PFG_CACHE_DBS; i++)
		cache_shared->slots[i].dbid = InvalidOid;
	LWLockRelease(cache_lock);
	pg_atomic_fetch_add_u64(&cache_shared->gen, 1);
}

/*
 * pfg_cache_get
 *		Copy out the cached advice of every database; returns how many.  An
 *		entry is fresh when no invalidation happened since it was computed
 *		and it is younger than max_age_secs.
 */
int
pfg_cache_get(int max_age_secs, pfgCachedAdvice **out)
{
	pfgCachedAdvice *res = palloc0(sizeof(pfgCachedAdvice) * PFG_CACHE_DBS);
	TimestampTz now = GetCurrentTimestamp();
	uint64		gen;
	int			n = 0;
	int			i;

	*out = res;
	if (cache_shared == NULL)
		return 0;
	gen = pg_atomic_read_u64(&cache_shared->gen);
	/* allocate before the lock: nothing under it can fail */
	for (i = 0; i < PFG_CACHE_DBS; i++)
		res[i].json = palloc(PFG_CACHE_BYTES);
	LWLockAcquire(cache_lock, LW_SHARED);
	for (i = 0; i < PFG_CACHE_DBS; i++)
	{
		pfgCacheSlot *s = &cache_shared->slots[i];

		if (s->dbid == InvalidOid)
			continue;
		res[n].dbid = s->dbid;
		res[n].computed_at = s->computed_at;
		res[n].fresh = s->gen == gen &&
			!TimestampDifferenceExceeds(s->computed_at, now,
										Min(max_age_secs, INT_MAX / 1000) * 1000);
		memcpy(res[n].json, s->json, s->len);
		res[n].json[s->len] = '\0';
		n++;
	}
	LWLockRelease(cache_lock);
	return n;
}

/*
 * pfg_cache_generation
 *		The invalidation generation, read before computing an advice that
 *		pfg_cache_put() stores: DDL while it was computed makes it stale.
 */
uint64
pfg_cache_generation(void)
{
	return cache_shared ? pg_atomic_read_u64(&cache_shared->gen) : 0;
}

/*
 * pfg_cache_put
 *		Cache the advice of database dbid (JSON text), computed as of
 *		generation "gen".  False when the text is too long to cache (the
 *		advice is then computed on every read).
 */
bool
pfg_cache_put(Oid dbid, const char *json, uint64 gen)
{
	int			len = strlen(json);
	int			i;
	int			slot = -1;

	if (cache_shared == NULL || len >= PFG_CACHE_BYTES)
		return false;
	LWLockAcquire(cache_lock, LW_EXCLUSIVE);
	for (i = 0; i < PFG_CACHE_DBS && slot < 0; i++)
		if (cache_shared->slots[i].dbid == dbid)
			slot = i;
	for (i = 0; i < PFG_CACHE_DBS && slot < 0; i++)
		if (cache_shared->slots[i].dbid == InvalidOid)
			slot = i;
	if (slot < 0)
	{
		/* the database computed longest ago makes room */
		slot = 0;
		for (i = 1; i < PFG_CACHE_DBS; i++)
			if (cache_shared->slots[i].computed_at <
				cache_shared->slots[slot].computed_at)
				slot = i;
	}
	cache_shared->slots[slot].dbid = dbid;
	cache_shared->slots[slot].gen = gen;
	cache_shared->slots[slot].computed_at = GetCurrentTimestamp();
	memcpy(cache_shared->slots[slot].json, json, len + 1);
	cache_shared->slots[slot].len = len;
	LWLockRelease(cache_lock);
	return true;
}

/*---- index sightings ----*/

/*
 * pfg_cache_first_seen
 *		When perfguard first saw index "indexrelid" of database "dbid"; now
 *		(and remembered) when this is the first time.  A full table forgets
 *		the most recently seen index: forgetting only delays DROP advice.
 */
TimestampTz
pfg_cache_first_seen(Oid dbid, Oid indexrelid, TimestampTz now)
{
	pfgSeenKey	key;
	pfgSeenEntry *e;
	TimestampTz result = now;
	bool		found;

	if (seen_htab == NULL)
		return now;
	memset(&key, 0, sizeof(key));
	key.dbid = dbid;
	key.indexrelid = indexrelid;
	LWLockAcquire(seen_lock, LW_SHARED);
	e = hash_search(seen_htab, &key, HASH_FIND, NULL);
	if (e)
		result = e->first_seen;
	LWLockRelease(seen_lock);
	if (e)
		return result;

	LWLockAcquire(seen_lock, LW_EXCLUSIVE);
	if (hash_get_num_entries(seen_htab) >= PFG_SEEN_MAX)
	{
		HASH_SEQ_STATUS status;
		pfgSeenEntry *x;
		pfgSeenEntry *victim = NULL;

		hash_seq_init(&status, seen_htab);
		while ((x = hash_seq_search(&status)) != NULL)
			if (victim == NULL || x->first_seen > victim->first_seen)
				victim = x;
		if (victim)
		{
			pfgSeenKey	k = victim->key;

			hash_search(seen_htab, &k, HASH_REMOVE, NULL);
		}
	}
	e = hash_search(seen_htab, &key, HASH_ENTER_NULL, &found);
	if (e && !found)
		e->first_seen = now;
	if (e)
		result = e->first_seen;
	LWLockRelease(seen_lock);
	return result;
}

static int
oid_cmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return (x > y) - (x < y);
}

/*
 * pfg_cache_forget_indexes
 *		Forget the sightings of database dbid's indexes that are not in
 *		keep[] (dropped since): an OID used again later is a new index.
 *		keep[] is sorted here.
 */
void
pfg_cache_forget_indexes(Oid dbid, const Oid *keep, int nkeep)
{
	HASH_SEQ_STATUS status;
	pfgSeenEntry *e;
	Oid		   *sorted;
	pfgSeenKey *gone;
	int			ngone = 0;
	int			i;

	if (seen_htab == NULL)
		return;
	sorted = palloc(sizeof(Oid) * (nkeep + 1));
	memcpy(sorted, keep, sizeof(Oid) * nkeep);
	qsort(sorted, nkeep, sizeof(Oid), oid_cmp);
	gone = palloc(sizeof(pfgSeenKey) * (PFG_SEEN_MAX + 1));

	LWLockAcquire(seen_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, seen_htab);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dbid == dbid && ngone < PFG_SEEN_MAX &&
			bsearch(&e->key.indexrelid, sorted, nkeep, sizeof(Oid),
					oid_cmp) == NULL)
			gone[ngone++] = e->key;
	}
	for (i = 0; i < ngone; i++)
		hash_search(seen_htab, &gone[i], HASH_REMOVE, NULL);
	LWLockRelease(seen_lock);
	pfree(sorted);
	pfree(gone);
}

/*
 * pfg_cache_dump
 *		Write the index sightings to PFG_SEEN_FILE (the cached advice is not
 *		saved: it is recomputed).  Called in the postmaster at shutdown;
 *		errors are reported at LOG.
 */
void
pfg_cache_dump(void)
{
	const char *tmpfile = PFG_SEEN_FILE ".tmp";
	FILE	   *file;
	pfgSeenFileHeader hdr;
	HASH_SEQ_STATUS status;
	pfgSeenEntry *e;

	if (seen_htab == NULL)
		return;
	file = pfg_persist_begin_write(tmpfile);
	if (file == NULL)
		goto error;
	memset(&hdr, 0, sizeof(hdr));
	pfg_persist_stamp(&hdr.stamp, PFG_SEEN_MAGIC, PFG_SEEN_FORMAT);
	hdr.entrysize = sizeof(pfgSeenEntry);
	hdr.count = hash_get_num_entries(seen_htab);
	if (fwrite(&hdr, sizeof(hdr), 1, file) != 1)
		goto error;
	hash_seq_init(&status, seen_htab);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (fwrite(e, sizeof(pfgSeenEntry), 1, file) != 1)
		{
			hash_seq_term(&status);
			goto error;
		}
	}
	pfg_persist_end_write(file, tmpfile, PFG_SEEN_FILE, true);
	return;

error:
	pfg_persist_end_write(file, tmpfile, PFG_SEEN_FILE, false);
}

/*
 * pfg_cache_load
 *		Read PFG_SEEN_FILE into the fresh table and unlink it.  A bad file
 *		gives a WARNING and an empty table (DROP advice then waits again).
 */
void
pfg_cache_load(void)
{
	FILE	   *file = pfg_persist_begin_read(PFG_SEEN_FILE);
	pfgSeenFileHeader hdr;
	const char *why = NULL;
	uint32		n;

	if (file == NULL)
		return;
	if (fread(&hdr, sizeof(hdr), 1, file) != 1)
		why = "file is truncated";
	else if ((why = pfg_persist_check(&hdr.stamp, PFG_SEEN_MAGIC,
									  PFG_SEEN_FORMAT,
									  "file is not a perfguard index file")) != NULL)
		;
	else if (hdr.entrysize != sizeof(pfgSeenEntry))
		why = "file was written by an incompatible version";
	else if (hdr.count > PFG_SEEN_MAX)
		why = "file has too many entries";
	for (n = 0; why == NULL && n < hdr.count; n++)
	{
		pfgSeenEntry buf;
		pfgSeenEntry *e;
		bool		found;

		if (fread(&buf, sizeof(buf), 1, file) != 1)
		{
			why = "file is truncated";
			break;
		}
		e = hash_search(seen_htab, &buf.key, HASH_ENTER_NULL, &found);
		if (e)
			e->first_seen = buf.first_seen;
	}
	if (why == NULL)
		why = pfg_persist_check_end(file);
	if (why != NULL)
	{
		HASH_SEQ_STATUS status;
		pfgSeenEntry *e;

		hash_seq_init(&status, seen_htab);
		while ((e = hash_seq_search(&status)) != NULL)
			hash_search(seen_htab, &e->key, HASH_REMOVE, NULL);
	}
	pfg_persist_end_read(file, PFG_SEEN_FILE, "index file", why);
}
